"""Remediation jobs: the message on the Storage queue between a decision and its execution.

Nothing that decides waits for a change: the decision enqueues a Job, and the queue
trigger carries it out. Messages are base64 text, as the Functions queue trigger
expects by default.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.core.errors import PayloadError

QUEUE = "remediations"
POISON_QUEUE = QUEUE + "-poison"
MAX_MESSAGE_BYTES = 48 * 1024  # the queue takes 64 KiB; base64 grows a third


@dataclass(frozen=True, slots=True)
class Job:
    operation_id: str
    remediation: str
    target: str
    params: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    fix_key: str | None = None  # the ledger key of the failure this job fixes (None for manual runs)
    scenario: str | None = None
    event_id: str | None = None
    approval_id: str | None = None
    requested_by: str = "policy"
    reason: str = ""
    mode: str = ""  # the catalog mode it was decided under (auto / approval); "" = the remediation's own
    tags: Mapping[str, str] = field(default_factory=dict)  # the target's tags at decision: policy is checked again

    def to_json(self) -> str:
        text = json.dumps(asdict(self) | {"params": dict(self.params), "tags": dict(self.tags)})
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            raise ValueError(f"job message of {len(text)} bytes is over {MAX_MESSAGE_BYTES}")
        return text

    @classmethod
    def from_json(cls, raw: str | bytes) -> Job:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise PayloadError("(message)", f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PayloadError("(message)", "expected a JSON object")
        for name in ("operation_id", "remediation", "target"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise PayloadError(name, "required, a non-empty string")
        params = data.get("params") or {}
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise PayloadError("params", "expected an object of strings")
        tags = data.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise PayloadError("tags", "expected an object of strings")
        def text(name: str) -> str | None:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise PayloadError(name, "expected a string")
            return value

        return cls(operation_id=data["operation_id"], remediation=data["remediation"], target=data["target"],
                   params=params, dry_run=bool(data.get("dry_run")), fix_key=text("fix_key"),
                   scenario=text("scenario"), event_id=text("event_id"), approval_id=text("approval_id"),
                   requested_by=text("requested_by") or "policy", reason=text("reason") or "",
                   mode=text("mode") or "", tags=tags)


class JobQueue:
    """Sends jobs to the Storage queue the queue trigger listens on."""

    def __init__(self, connection_string: str | None = None, *, account_url: str | None = None,
                 credential: Any = None, name: str = QUEUE) -> None:
        if (connection_string is None) == (account_url is None):
            raise ValueError("give either a storage connection string or a queue account URL")
        self._conn = connection_string
        self._account_url = account_url
        self._credential = credential
        self.name = name
        self._client: Any = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], name: str = QUEUE) -> JobQueue:
        from shared.state.tables import normalise_connection_string

        conn = env.get("REMEDIATOR_STORAGE") or env.get("AzureWebJobsStorage")
        if conn:
            return cls(normalise_connection_string(conn), name=name)
        account = env.get("AzureWebJobsStorage__accountName")
        uri = env.get("AzureWebJobsStorage__queueServiceUri") or (
            f"https://{account}.queue.core.windows.net" if account else None)
        if not uri:
            raise ValueError("no queue storage configured: set AzureWebJobsStorage or AzureWebJobsStorage__accountName")
        from azure.identity import DefaultAzureCredential

        client_id = env.get("AzureWebJobsStorage__clientId") or env.get("AZURE_CLIENT_ID")
        return cls(account_url=uri, credential=DefaultAzureCredential(managed_identity_client_id=client_id),
                   name=name)

    @property
    def client(self) -> Any:
        if self._client is None:
            from azure.core.exceptions import ResourceExistsError
            from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

            from shared.azure.clients import pooled_transport

            client: Any
            if self._conn is not None:
                client = QueueClient.from_connection_string(
                    self._conn, self.name, message_encode_policy=BinaryBase64EncodePolicy(),
                    message_decode_policy=BinaryBase64DecodePolicy(), transport=pooled_transport())
            else:
                client = QueueClient(
                    str(self._account_url), self.name, credential=self._credential, transport=pooled_transport(),
                    message_encode_policy=BinaryBase64EncodePolicy(), message_decode_policy=BinaryBase64DecodePolicy())
            with contextlib.suppress(ResourceExistsError):  # "already exists" is the state we want
                client.create_queue()
            self._client = client
        return self._client

    def send(self, job: Job) -> None:
        self.client.send_message(job.to_json().encode())

    def receive(self, max_messages: int = 32, visibility_timeout: int = 60) -> list[tuple[Any, Job]]:
        """For a local worker loop and tests; in Azure the queue trigger receives."""
        out = []
        for message in self.client.receive_messages(max_messages=max_messages, visibility_timeout=visibility_timeout):
            out.append((message, Job.from_json(bytes(message.content))))
            if len(out) >= max_messages:
                break
        return out

    def delete(self, message: Any) -> None:
        self.client.delete_message(message)
