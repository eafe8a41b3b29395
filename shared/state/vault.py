"""The vault in Table Storage: the intent of a multi-step change (what was there, what it
becomes), durable across instances and process deaths.

A definition that cannot be stored whole is refused before anything is changed: a
truncated definition could not bring the resource back.
"""

from __future__ import annotations

from typing import Any

from shared.state.tables import (
    PROPERTY_UNITS,
    StateStore,
    get_row,
    pack_json,
    query_rows,
    safe_key,
    to_json,
    unpack_json,
    upsert_row,
    utcnow,
    utf16_units,
)

ROW = "definition"
CHUNKS = 14  # 14 x 32k UTF-16 units (64 KB each): inside the 1 MiB entity limit


class VaultFull(RuntimeError):
    """A template definition too large to keep safely."""


class TableVault:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    @property
    def _table(self) -> Any:
        return self._store.table("vault")

    def keep(self, template_id: str, original: dict[str, Any], intended: dict[str, Any],
             remediation: str | None = None) -> None:
        value = {"template_id": template_id, "original": original, "intended": intended,
                 "remediation": remediation, "kept_at": utcnow().isoformat()}
        if utf16_units(to_json(value)) > PROPERTY_UNITS * CHUNKS:
            raise VaultFull(f"the definition of {template_id} is too large to keep safely")
        props = pack_json("value", value, max_chunks=CHUNKS)
        upsert_row(self._table, {"PartitionKey": safe_key(template_id.lower()), "RowKey": ROW, **props})

    def get(self, template_id: str) -> dict[str, Any] | None:
        row = get_row(self._table, safe_key(template_id.lower()), ROW)
        if row is None:
            return None
        value: dict[str, Any] = unpack_json(row.props, "value")
        return value

    def pending(self) -> list[dict[str, Any]]:
        """Every intent still kept: a change that was interrupted, or is under way now."""
        return [unpack_json(row.props, "value") for row in query_rows(self._table, "RowKey eq @row", {"row": ROW})]

    def drop(self, template_id: str) -> None:
        self._table.delete_entity(partition_key=safe_key(template_id.lower()), row_key=ROW)
