"""Orchestrator schema: saga_instance, saga_event, outbox, inbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from migrations.shared_ddl import create_outbox_and_inbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "sagaline"
LIVE = sa.text("status IN ('running', 'compensating')")


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "saga_instance",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("saga_type", sa.Text, nullable=False),
        sa.Column("definition_version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("step", sa.Text),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("completed_steps", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("to_compensate", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("attempt", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("epoch", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("waiting", sa.Text),
        sa.Column("pending_command_id", sa.Text),
        sa.Column("deadline_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("failure_reason", sa.Text),
        sa.Column("trace_context", JSONB),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint(
            "status IN ('running', 'compensating', 'completed', 'compensated', 'failed')",
            name="saga_status_known",
        ),
        schema=SCHEMA,
    )
    op.create_index("saga_instance_live_idx", "saga_instance", ["status"], schema=SCHEMA, postgresql_where=LIVE)
    op.create_index(
        "saga_instance_deadline_idx", "saga_instance", ["deadline_at"], schema=SCHEMA, postgresql_where=LIVE
    )
    op.create_index(
        "saga_instance_expires_idx",
        "saga_instance",
        ["expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "saga_event",
        sa.Column("saga_id", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("step", sa.Text),
        sa.Column("payload", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("saga_id", "seq"),
        schema=SCHEMA,
    )
    # History is append-only: refuse updates and deletes at the database, not only in code.
    op.execute(
        f"CREATE FUNCTION {SCHEMA}.saga_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'saga_event is append-only'; END $$",
    )
    op.execute(
        f"CREATE TRIGGER saga_event_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.saga_event "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.saga_event_append_only()",
    )
    create_outbox_and_inbox(SCHEMA)


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
