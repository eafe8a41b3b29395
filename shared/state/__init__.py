"""Durable state in Azure Table Storage: idempotency ledger, target leases, rate counters,
approvals, audit trail and operations.

Importing this package imports no Azure SDK (Functions cold start); the SDK loads on
the first table call. Build one `StateStore` per process (`StateStore.from_env()`) and
hand it to the classes below.
"""

from __future__ import annotations

from shared.state.approvals import Approval, ApprovalError, Approvals, ApprovalState, Decision
from shared.state.audit import Audit, AuditKind, AuditRecord, Change
from shared.state.counters import Counters, Window
from shared.state.ledger import Begin, BeginState, Ledger, LedgerRecord, LedgerState
from shared.state.locks import Held, Lease, LockBusy, LockLost, TargetLocks
from shared.state.operations import Operation, OperationError, Operations, OperationStatus
from shared.state.tables import (
    Clock,
    Contention,
    StateConfigError,
    StateError,
    StateStore,
    dev_connection_string,
    safe_key,
)

__all__ = [
    "Approval",
    "ApprovalError",
    "ApprovalState",
    "Approvals",
    "Audit",
    "AuditKind",
    "AuditRecord",
    "Begin",
    "BeginState",
    "Change",
    "Clock",
    "Contention",
    "Counters",
    "Decision",
    "Held",
    "Lease",
    "Ledger",
    "LedgerRecord",
    "LedgerState",
    "LockBusy",
    "LockLost",
    "Operation",
    "OperationError",
    "OperationStatus",
    "Operations",
    "StateConfigError",
    "StateError",
    "StateStore",
    "TargetLocks",
    "Window",
    "dev_connection_string",
    "safe_key",
]
