"""Blob storage, read side: GET/HEAD {url}/blob/{account}/{container}/{path} (Get Blob).

Answers as Azure Storage does: the bytes with Content-Length, Content-Type, ETag, Last-Modified,
`x-ms-blob-type: BlockBlob`; `Range` / `x-ms-range` in the two formats the service documents (`bytes=a-`,
`bytes=a-b`: "Specifying the range header for Blob service operations") -> 206 with Content-Range; no suffix
range (`bytes=-n`: not a format the service accepts, read as no range); an unsatisfiable range -> 416 with
`Content-Range: bytes */size`; errors as Storage's XML body with `x-ms-error-code` (BlobNotFound,
ContainerNotFound, InvalidRange, NoAuthenticationInformation).
"""

from __future__ import annotations

import hashlib
import re
from email.utils import format_datetime
from xml.sax.saxutils import escape

from sandbox.base import Context, Request, Response
from sandbox.util import utcnow

STORAGE_VERSION = "2024-11-04"


def storage_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    now = utcnow()
    text = (f'\ufeff<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{escape(message)}\n'
            f"RequestId:{hashlib.sha1(now.isoformat().encode()).hexdigest()[:32]}\n"
            f"Time:{now.strftime('%Y-%m-%dT%H:%M:%S.%f')}0Z</Message></Error>")
    return Response(status, text.encode(), {"Content-Type": "application/xml", "x-ms-error-code": code,
                                            "x-ms-version": STORAGE_VERSION, **(headers or {})})


def unauthenticated(tenant_id: str) -> Response:
    return storage_error(401, "NoAuthenticationInformation", "Server failed to authenticate the request. Please "
                         "refer to the information in the www-authenticate header.", {
                             "WWW-Authenticate": f"Bearer authorization_uri=https://login.microsoftonline.com/"
                                                 f"{tenant_id}/oauth2/authorize resource_id=https://storage.azure.com"})


def _range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive; None for no range; "bad" when unsatisfiable."""
    match = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", header)
    if not match:
        return None  # a malformed or suffix range is no range: the whole blob
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if start >= size or end < start:
        return "bad"
    return start, min(end, size - 1)


def get_blob(ctx: Context, request: Request) -> Response:
    account, container, path = request.param("account"), request.param("container"), request.param("path")
    data = ctx.state.blob(account, container, path)
    if data is None:
        if not ctx.state.has_container(account, container):
            return storage_error(404, "ContainerNotFound", "The specified container does not exist.")
        return storage_error(404, "BlobNotFound", "The specified blob does not exist.")
    size = len(data)
    etag = '"0x8DC' + hashlib.sha1(data).hexdigest()[:12].upper() + '"'
    headers = {
        "Content-Type": "text/plain; charset=utf-8" if path.endswith((".log", ".txt")) else "application/octet-stream",
        "ETag": etag, "Last-Modified": format_datetime(utcnow().replace(microsecond=0), usegmt=True),
        "Accept-Ranges": "bytes", "x-ms-blob-type": "BlockBlob", "x-ms-version": STORAGE_VERSION,
        "x-ms-server-encrypted": "true", "x-ms-lease-status": "unlocked", "x-ms-lease-state": "available",
    }
    wanted = request.headers.get("x-ms-range") or request.headers.get("range")
    span = _range(wanted, size) if wanted else None
    if span == "bad":
        return storage_error(416, "InvalidRange", "The range specified is invalid for the current size of the "
                             "resource.", {"Content-Range": f"bytes */{size}"})
    if isinstance(span, tuple):
        start, end = span
        body = data[start:end + 1]
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Response(206, b"" if request.method == "HEAD" else body, headers | {"Content-Length": str(len(body))})
    return Response(200, b"" if request.method == "HEAD" else data, headers | {"Content-Length": str(size)})
