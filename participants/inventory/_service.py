"""The inventory service: stock per SKU and reservations per order. Stock never goes negative."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import CheckConstraint, Column, Integer, MetaData, Table, Text, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert

from contracts import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReleaseInventory,
    Reply,
    ReserveInventory,
)
from orchestrator.messaging import json_text
from participants.kit import BatchTransaction, LocalTransaction, Participant

SCHEMA = "inventory_svc"

metadata = MetaData(schema=SCHEMA)
product = Table(
    "product",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default=text("0")),
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="stock_not_negative"),
)
reservation = Table(
    "reservation",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("quantities", JSONB, nullable=False),
    Column("status", Text, nullable=False),
)

inventory = Participant("inventory", metadata=metadata)

# Hot statements as fixed SQL on the driver connection (``tx.sql``), each for every reservation of a batch handler
# call. One round trip locks the stock rows (in SKU order, so concurrent reservations never deadlock) and reads the
# orders' existing reservations; the primary key refuses a concurrent second one.
_LOCK_STOCK = f"""
SELECT 'stock' AS kind, sku AS key, on_hand - reserved AS available, NULL AS status
FROM (SELECT sku, on_hand, reserved FROM {SCHEMA}.product WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE) AS p
UNION ALL
SELECT 'order', order_id, NULL, status FROM {SCHEMA}.reservation WHERE order_id = ANY($2::text[])"""  # noqa: S608
# And one more takes the stock of every granted reservation and records them.
_RESERVE = f"""
WITH take_stock AS (
    UPDATE {SCHEMA}.product p SET reserved = p.reserved + taken.quantity
    FROM unnest($1::text[], $2::int[]) AS taken(sku, quantity) WHERE p.sku = taken.sku
)
INSERT INTO {SCHEMA}.reservation (order_id, quantities, status)
SELECT order_id, quantities::jsonb, 'live' FROM unnest($3::text[], $4::text[]) AS r(order_id, quantities)"""  # noqa: S608


def _wanted(cmd: ReserveInventory) -> dict[str, int]:
    wanted: dict[str, int] = defaultdict(int)
    for item in cmd.items:
        wanted[item.sku] += item.quantity
    return dict(sorted(wanted.items()))


def _refusal(wanted: dict[str, int], available: dict[str, int]) -> str | None:
    for sku, quantity in wanted.items():
        if sku not in available:
            return f"unknown sku {sku}"
        if available[sku] < quantity:
            return f"not enough stock for {sku}: {available[sku]} available, {quantity} wanted"
    return None


@inventory.handles_batch(ReserveInventory)
async def reserve(tx: BatchTransaction, cmds: Sequence[ReserveInventory]) -> list[Reply]:
    """Reservations in order against the stock locked once: each one granted takes from what the next sees."""
    wanted = [_wanted(cmd) for cmd in cmds]
    rows = await tx.sql.fetch(
        _LOCK_STOCK, sorted({sku for w in wanted for sku in w}), sorted({cmd.order_id for cmd in cmds})
    )
    available = {r["key"]: r["available"] for r in rows if r["kind"] == "stock"}
    existing = {r["key"]: r["status"] for r in rows if r["kind"] == "order"}
    replies: list[Reply] = []
    taken: dict[str, int] = defaultdict(int)
    granted: dict[str, dict[str, int]] = {}
    for cmd, want in zip(cmds, wanted, strict=True):
        status = existing.get(cmd.order_id)
        refusal = f"order already has a {status} reservation" if status else _refusal(want, available)
        if refusal is not None:
            replies.append(InventoryReservationFailed(order_id=cmd.order_id, reason=refusal))
            continue
        for sku, quantity in want.items():
            available[sku] -= quantity
            taken[sku] += quantity
        existing[cmd.order_id] = "live"
        granted[cmd.order_id] = want
        replies.append(InventoryReserved(order_id=cmd.order_id))
    if granted:
        await tx.sql.execute(
            _RESERVE, list(taken), list(taken.values()), list(granted), [json_text(q) for q in granted.values()]
        )
    return replies


@inventory.handles(ReleaseInventory)
async def release(tx: LocalTransaction, cmd: ReleaseInventory) -> Reply:
    row = (
        await tx.connection.execute(
            select(reservation.c.quantities, reservation.c.status)
            .where(reservation.c.order_id == cmd.order_id)
            .with_for_update(),
        )
    ).first()
    if row is None:
        # Release before reserve: leave a tombstone so a late reserve is refused.
        await tx.connection.execute(insert(reservation).values(order_id=cmd.order_id, quantities={}, status="released"))
        return InventoryReleased(order_id=cmd.order_id)
    if row.status == "live":
        for sku, quantity in sorted(row.quantities.items()):
            await tx.connection.execute(
                update(product).where(product.c.sku == sku).values(reserved=product.c.reserved - quantity),
            )
        await tx.connection.execute(
            update(reservation).where(reservation.c.order_id == cmd.order_id).values(status="released"),
        )
    return InventoryReleased(order_id=cmd.order_id)
