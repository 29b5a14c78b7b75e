"""The order service: owns orders and their lifecycle (created → approved, or cancelled)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, bindparam, select, text
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

# Built once, executed with parameters: SQLAlchemy then skips building and keying the statement per command.
_create = insert(orders).on_conflict_do_nothing().returning(orders.c.order_id)
_status = select(orders.c.status).where(orders.c.order_id == bindparam("id"))
APPROVABLE = ("created", "approved")
_approve = (
    orders.update()
    .where((orders.c.order_id == bindparam("id")) & orders.c.status.in_(APPROVABLE))
    .values(status="approved", updated_at=text("now()"))
    .returning(orders.c.order_id)
)


@order.handles(CreateOrder)
async def create_order(tx: LocalTransaction, cmd: CreateOrder) -> Reply:
    if cmd.amount_cents > MAX_ORDER_CENTS:
        return OrderRejected(order_id=cmd.order_id, reason=f"order exceeds the maximum of {MAX_ORDER_CENTS} cents")
    inserted = await tx.session.execute(
        _create,
        {
            "order_id": cmd.order_id,
            "customer_id": cmd.customer_id,
            "amount_cents": cmd.amount_cents,
            "status": "created",
        },
    )
    if inserted.first() is None:
        status = (await tx.session.execute(_status, {"id": cmd.order_id})).scalar_one()
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
    if (await tx.session.execute(_approve, {"id": cmd.order_id})).first() is None:
        state = (await tx.session.execute(_status, {"id": cmd.order_id})).scalar_one_or_none() or "missing"
        return CommandFailed(reason=f"order {cmd.order_id} cannot be approved ({state})", error_type="conflict")
    return OrderApproved(order_id=cmd.order_id)
