"""Keep each payment customer's outstanding balance on its row instead of summing its charges per credit check.

The sum grew with the customer's history (``charge_customer_charged_idx`` made it an index scan, still one row
per charge ever granted); the balance is updated under the customer row lock that already serialises its charges,
so a credit check is one row read however many orders came before. The index served only that sum.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "customer",
        sa.Column("outstanding_cents", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        schema="payment_svc",
    )
    op.execute(
        "UPDATE payment_svc.customer AS c SET outstanding_cents = t.cents FROM ("
        "SELECT customer_id, sum(amount_cents) AS cents FROM payment_svc.charge WHERE status = 'charged' "
        "GROUP BY customer_id) AS t WHERE c.customer_id = t.customer_id"
    )
    op.drop_index("charge_customer_charged_idx", table_name="charge", schema="payment_svc")


def downgrade() -> None:
    op.create_index(
        "charge_customer_charged_idx",
        "charge",
        ["customer_id"],
        schema="payment_svc",
        postgresql_where=sa.text("status = 'charged'"),
    )
    op.drop_column("customer", "outstanding_cents", schema="payment_svc")
