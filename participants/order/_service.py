"""The order service: owns orders and their lifecycle (created → approved, or cancelled)."""

from __future__ import annotations

from collections.abc import Sequence

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
from participants.kit import BatchTransaction, LocalTransaction, Participant

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

# Hot statements as fixed SQL on the driver connection (``tx.sql``), each for every command of a batch handler call.
_CREATE = f"""
INSERT INTO {SCHEMA}.orders (order_id, customer_id, amount_cents, status)
SELECT order_id, customer_id, amount_cents, 'created'
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS o(order_id, customer_id, amount_cents)
ON CONFLICT DO NOTHING RETURNING order_id"""  # noqa: S608 - constant
_STATUS = f"SELECT order_id, status FROM {SCHEMA}.orders WHERE order_id = ANY($1::text[])"  # noqa: S608
APPROVABLE = ("created", "approved")
# The update's own condition is the check (and its row locks); only refused orders are read afterwards.
_APPROVE = f"""
UPDATE {SCHEMA}.orders SET status = 'approved', updated_at = now()
WHERE order_id = ANY($1::text[]) AND status = ANY($2::text[]) RETURNING order_id"""  # noqa: S608


async def _statuses(tx: BatchTransaction, order_ids: set[str]) -> dict[str, str]:
    if not order_ids:
        return {}
    return {r["order_id"]: r["status"] for r in await tx.sql.fetch(_STATUS, sorted(order_ids))}


@order.handles_batch(CreateOrder)
async def create_order(tx: BatchTransaction, cmds: Sequence[CreateOrder]) -> list[Reply]:
    first: dict[str, CreateOrder] = {}  # an order id's first command within the limit: the one that may create it
    for cmd in cmds:
        if cmd.amount_cents <= MAX_ORDER_CENTS:
            first.setdefault(cmd.order_id, cmd)
    rows = await tx.sql.fetch(
        _CREATE,
        list(first),
        [cmd.customer_id for cmd in first.values()],
        [cmd.amount_cents for cmd in first.values()],
    )
    created = {r["order_id"] for r in rows}
    before = await _statuses(tx, set(first) - created)
    replies: list[Reply] = []
    for cmd in cmds:
        if cmd.amount_cents > MAX_ORDER_CENTS:
            reason = f"order exceeds the maximum of {MAX_ORDER_CENTS} cents"
            replies.append(OrderRejected(order_id=cmd.order_id, reason=reason))
        elif first[cmd.order_id] is cmd and cmd.order_id in created:
            replies.append(OrderCreated(order_id=cmd.order_id))
        else:
            status = before.get(cmd.order_id, "created")  # not in ``before``: an earlier command created it
            replies.append(
                CommandFailed(reason=f"order {cmd.order_id} already exists ({status})", error_type="conflict")
            )
    return replies


@order.handles(CancelOrder)
async def cancel_order(tx: LocalTransaction, cmd: CancelOrder) -> Reply:
    # Upsert: a cancel that overtakes its create leaves a tombstone, so a late create is refused.
    await tx.connection.execute(
        insert(orders)
        .values(order_id=cmd.order_id, status="cancelled")
        .on_conflict_do_update(index_elements=["order_id"], set_={"status": "cancelled", "updated_at": text("now()")}),
    )
    return OrderCancelled(order_id=cmd.order_id)


@order.handles_batch(ApproveOrder)
async def approve_order(tx: BatchTransaction, cmds: Sequence[ApproveOrder]) -> list[Reply]:
    ids = sorted({cmd.order_id for cmd in cmds})
    approved = {r["order_id"] for r in await tx.sql.fetch(_APPROVE, ids, list(APPROVABLE))}
    refused = await _statuses(tx, set(ids) - approved)
    replies: list[Reply] = []
    for cmd in cmds:
        if cmd.order_id in approved:
            replies.append(OrderApproved(order_id=cmd.order_id))
        else:
            state = refused.get(cmd.order_id, "missing")
            replies.append(
                CommandFailed(reason=f"order {cmd.order_id} cannot be approved ({state})", error_type="conflict")
            )
    return replies
