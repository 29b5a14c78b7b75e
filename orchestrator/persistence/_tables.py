"""SQLAlchemy table definitions: the orchestrator's schema and the outbox/inbox shape every service shares."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

ORCHESTRATOR_SCHEMA = "sagaline"
LIVE_STATUSES = "status IN ('running', 'compensating')"

metadata = MetaData(schema=ORCHESTRATOR_SCHEMA)

saga_instance = Table(
    "saga_instance",
    metadata,
    Column("id", Text, primary_key=True),
    Column("saga_type", Text, nullable=False),
    Column("definition_version", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("step", Text),
    Column("data", JSONB, nullable=False),
    Column("completed_steps", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("to_compensate", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("attempt", Integer, nullable=False, server_default=text("1")),
    Column("epoch", Integer, nullable=False, server_default=text("0")),
    Column("waiting", Text),
    Column("pending_command_id", Text),
    Column("deadline_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("failure_reason", Text),
    Column("trace_context", JSONB),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("saga_instance_live_idx", "status", postgresql_where=text(LIVE_STATUSES)),
    Index("saga_instance_deadline_idx", "deadline_at", postgresql_where=text(LIVE_STATUSES)),
    Index("saga_instance_expires_idx", "expires_at", postgresql_where=text("status = 'running'")),
)

saga_transition = Table(
    "saga_transition",
    metadata,
    Column("saga_id", Text, nullable=False),
    Column("first_seq", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("entries", JSONB, nullable=False),  # [{"type", "step", "payload"}, ...], seqs first_seq..last_seq
    PrimaryKeyConstraint("saga_id", "first_seq"),
)

# A view of ``saga_transition``'s entries, one row per event (migration 0007): what every reader reads.
saga_event = Table(
    "saga_event",
    metadata,
    Column("saga_id", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("step", Text),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("saga_id", "seq"),
)


def outbox_table(meta: MetaData, schema: str) -> Table:
    """Insert-only; column names follow Debezium's outbox router where they fit (id, key, payload)."""
    return Table(
        "outbox",
        meta,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("topic", Text, nullable=False),
        Column("key", Text),
        Column("headers", JSONB, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
        Column("inline_publish", Boolean, nullable=False, server_default=false()),
        schema=schema,
    )


def inbox_table(meta: MetaData, schema: str) -> Table:
    """One row per processed message id; participants also keep the reply they sent, to answer duplicates."""
    return Table(
        "inbox",
        meta,
        Column("consumer", Text, nullable=False),
        Column("message_id", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("reply_topic", Text),
        Column("reply_headers", JSONB),
        Column("reply_payload", JSONB),
        PrimaryKeyConstraint("consumer", "message_id"),
        schema=schema,
    )


outbox = outbox_table(metadata, ORCHESTRATOR_SCHEMA)
inbox = inbox_table(metadata, ORCHESTRATOR_SCHEMA)
