"""Postgres persistence: tables, engines and saga repositories."""

from orchestrator.persistence._db import asyncpg_dsn, create_engine, sqlalchemy_url
from orchestrator.persistence._held import BatchConnection
from orchestrator.persistence._sagas import (
    append_history,
    claim_due,
    insert_saga,
    lock_saga,
    save_saga,
    snapshot,
    state_from_row,
)
from orchestrator.persistence._tables import (
    ORCHESTRATOR_SCHEMA,
    inbox,
    inbox_table,
    metadata,
    outbox,
    outbox_table,
    saga_event,
    saga_instance,
)

__all__ = [
    "ORCHESTRATOR_SCHEMA",
    "BatchConnection",
    "append_history",
    "asyncpg_dsn",
    "claim_due",
    "create_engine",
    "inbox",
    "inbox_table",
    "insert_saga",
    "lock_saga",
    "metadata",
    "outbox",
    "outbox_table",
    "saga_event",
    "saga_instance",
    "save_saga",
    "snapshot",
    "sqlalchemy_url",
    "state_from_row",
]
