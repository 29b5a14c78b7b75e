"""Participant schemas: order, inventory, payment, shipment — each with its own outbox and inbox.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from migrations.shared_ddl import create_outbox_and_inbox

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMAS = ("order_svc", "inventory_svc", "payment_svc", "shipment_svc")


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        create_outbox_and_inbox(schema)
    op.create_table(
        "orders",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text),
        sa.Column("amount_cents", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint("status IN ('created', 'approved', 'cancelled')", name="order_status_known"),
        schema="order_svc",
    )
    op.create_table(
        "product",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("on_hand", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="stock_not_negative"),
        schema="inventory_svc",
    )
    op.create_table(
        "reservation",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("quantities", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('live', 'released')", name="reservation_status_known"),
        schema="inventory_svc",
    )
    op.create_table(
        "customer",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("credit_limit_cents", sa.BigInteger, nullable=False),
        schema="payment_svc",
    )
    op.create_table(
        "charge",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("charge_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text),
        sa.Column("amount_cents", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('charged', 'refunded')", name="charge_status_known"),
        schema="payment_svc",
    )
    op.create_table(
        "shipment",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("shipment_id", sa.Text, nullable=False),
        sa.Column("country", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('scheduled', 'cancelled')", name="shipment_status_known"),
        schema="shipment_svc",
    )


def downgrade() -> None:
    for schema in reversed(SCHEMAS):
        op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
