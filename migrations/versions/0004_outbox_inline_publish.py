"""Outbox rows that the writing process publishes itself right after its commit (``inline_publish``).

Such rows wake no relay: NOTIFY fires only for rows nobody publishes inline (an operator's verb from the CLI,
say), and the relays take inline rows only once they are older than the grace period (the writer died or the
broker was down). Also drops the per-commit NOTIFY from the hot path, which serialises committing transactions.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMAS = ("sagaline", "order_svc", "inventory_svc", "payment_svc", "shipment_svc")


def upgrade() -> None:
    for schema in SCHEMAS:
        op.add_column(
            "outbox",
            sa.Column("inline_publish", sa.Boolean, nullable=False, server_default=sa.false()),
            schema=schema,
        )
        op.execute(f"DROP TRIGGER outbox_notify ON {schema}.outbox")
        op.execute(
            f"CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox FOR EACH ROW "
            f"WHEN (NOT NEW.inline_publish) EXECUTE FUNCTION {schema}.outbox_notify()",
        )


def downgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"DROP TRIGGER outbox_notify ON {schema}.outbox")
        op.execute(
            f"CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.outbox_notify()",
        )
        op.drop_column("outbox", "inline_publish", schema=schema)
