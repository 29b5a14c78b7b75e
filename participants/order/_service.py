"""The order service: owns orders and their lifecycle (created → approved, or cancelled)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import insert

from contracts import (
    ApproveOrder,
    CancelOrder,
    CommandFailed,
    CreateOrder,
    OrderApproved,
    OrderCancelled,
    OrderCreated,
    OrderRejected,
    Reply,
)
from participants.kit import LocalTransaction, Participant

SCHEMA = "order_svc"
MAX_ORDER_CENTS = 5_000_000

metadata = MetaData(schema=SCHEMA)
orders = Table(
    "orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text),
    Column("amount_cents", BigInteger, nullable=False, server_default=text("0")),
    Column("status", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

order = Participant("order", metadata=metadata)

# Hot statements as fixed SQL on the driver connection (``tx.sql``).
_CREATE = f"""
INSERT INTO {SCHEMA}.orders (order_id, customer_id, amount_cents, status)
VALUES ($1::text, $2::text, $3::bigint, 'created')
ON CONFLICT DO NOTHING RETURNING order_id"""  # noqa: S608 - constant
_STATUS = f"SELECT status FROM {SCHEMA}.orders WHERE order_id = $1::text"  # noqa: S608
APPROVABLE = ("created", "approved")
_APPROVE = f"""
UPDATE {SCHEMA}.orders SET status = 'approved', updated_at = now()
WHERE order_id = $1::text AND status = ANY($2::text[]) RETURNING order_id"""  # noqa: S608


@order.handles(CreateOrder)
async def create_order(tx: LocalTransaction, cmd: CreateOrder) -> Reply:
    if cmd.amount_cents > MAX_ORDER_CENTS:
        return OrderRejected(order_id=cmd.order_id, reason=f"order exceeds the maximum of {MAX_ORDER_CENTS} cents")
    if await tx.sql.fetchval(_CREATE, cmd.order_id, cmd.customer_id, cmd.amount_cents) is None:
        status = await tx.sql.fetchval(_STATUS, cmd.order_id)
        return CommandFailed(reason=f"order {cmd.order_id} already exists ({status})", error_type="conflict")
    return OrderCreated(order_id=cmd.order_id)


@order.handles(CancelOrder)
async def cancel_order(tx: LocalTransaction, cmd: CancelOrder) -> Reply:
    # Upsert: a cancel that overtakes its create leaves a tombstone, so a late create is refused.
    await tx.session.execute(
        insert(orders)
        .values(order_id=cmd.order_id, status="cancelled")
        .on_conflict_do_update(index_elements=["order_id"], set_={"status": "cancelled", "updated_at": text("now()")}),
    )
    return OrderCancelled(order_id=cmd.order_id)


@order.handles(ApproveOrder)
async def approve_order(tx: LocalTransaction, cmd: ApproveOrder) -> Reply:
    # One round trip in the common case: the update's own condition is the check (and its row lock).
    if await tx.sql.fetchval(_APPROVE, cmd.order_id, list(APPROVABLE)) is None:
        state = await tx.sql.fetchval(_STATUS, cmd.order_id) or "missing"
        return CommandFailed(reason=f"order {cmd.order_id} cannot be approved ({state})", error_type="conflict")
    return OrderApproved(order_id=cmd.order_id)
