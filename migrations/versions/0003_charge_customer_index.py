"""Index the payment service's live charges by customer: every ChargePayment sums them.

Without it the credit check scanned the whole ``charge`` table, so a charge cost more the more orders there were.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "charge_customer_charged_idx",
        "charge",
        ["customer_id"],
        schema="payment_svc",
        postgresql_where=sa.text("status = 'charged'"),
    )


def downgrade() -> None:
    op.drop_index("charge_customer_charged_idx", table_name="charge", schema="payment_svc")
