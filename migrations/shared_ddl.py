"""Column sets every service's outbox and inbox share, used by the revisions."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB


def create_outbox_and_inbox(schema: str) -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")
        ),
        schema=schema,
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("reply_topic", sa.Text),
        sa.Column("reply_headers", JSONB),
        sa.Column("reply_payload", JSONB),
        sa.PrimaryKeyConstraint("consumer", "message_id"),
        schema=schema,
    )
    # Wake relays in other processes on commit, from the database itself: one round trip less per handled
    # message than an explicit NOTIFY. The channel name is orchestrator.messaging.notify_channel(schema).
    op.execute(
        f"CREATE FUNCTION {schema}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('sagaline_outbox_{schema}', ''); RETURN NULL; END $$",
    )
    op.execute(
        f"CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.outbox_notify()",
    )
