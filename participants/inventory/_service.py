"""The inventory service: stock per SKU and reservations per order. Stock never goes negative."""

from __future__ import annotations

from collections import defaultdict

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
from participants.kit import LocalTransaction, Participant

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

# Hot statements as fixed SQL on the driver connection (``tx.sql``). One round trip locks the stock rows (in SKU
# order, so concurrent reservations never deadlock) and reads whether the order already has a reservation; the
# primary key refuses a concurrent second one.
_LOCK_STOCK = f"""
SELECT p.sku, p.on_hand, p.reserved,
       (SELECT r.status FROM {SCHEMA}.reservation r WHERE r.order_id = $1::text) AS existing
FROM {SCHEMA}.product p WHERE p.sku = ANY($2::text[]) ORDER BY p.sku FOR UPDATE OF p"""  # noqa: S608 - constant
_RESERVATION_STATUS = f"SELECT status FROM {SCHEMA}.reservation WHERE order_id = $1::text"  # noqa: S608
# And one more takes the stock and records the reservation.
_RESERVE = f"""
WITH wanted AS (SELECT * FROM unnest($1::text[], $2::int[]) AS w(sku, quantity)),
take_stock AS (
    UPDATE {SCHEMA}.product p SET reserved = p.reserved + wanted.quantity FROM wanted WHERE p.sku = wanted.sku
)
INSERT INTO {SCHEMA}.reservation (order_id, quantities, status) VALUES ($3::text, $4::jsonb, 'live')"""  # noqa: S608


@inventory.handles(ReserveInventory)
async def reserve(tx: LocalTransaction, cmd: ReserveInventory) -> Reply:
    wanted: dict[str, int] = defaultdict(int)
    for item in cmd.items:
        wanted[item.sku] += item.quantity
    rows = await tx.sql.fetch(_LOCK_STOCK, cmd.order_id, sorted(wanted))
    existing = rows[0]["existing"] if rows else await tx.sql.fetchval(_RESERVATION_STATUS, cmd.order_id)
    if existing is not None:
        return InventoryReservationFailed(order_id=cmd.order_id, reason=f"order already has a {existing} reservation")
    stock = {r["sku"]: r["on_hand"] - r["reserved"] for r in rows}
    for sku, quantity in sorted(wanted.items()):
        if sku not in stock:
            return InventoryReservationFailed(order_id=cmd.order_id, reason=f"unknown sku {sku}")
        if stock[sku] < quantity:
            return InventoryReservationFailed(
                order_id=cmd.order_id,
                reason=f"not enough stock for {sku}: {stock[sku]} available, {quantity} wanted",
            )
    await tx.sql.execute(_RESERVE, list(wanted), list(wanted.values()), cmd.order_id, json_text(wanted))
    return InventoryReserved(order_id=cmd.order_id)


@inventory.handles(ReleaseInventory)
async def release(tx: LocalTransaction, cmd: ReleaseInventory) -> Reply:
    row = (
        await tx.session.execute(
            select(reservation.c.quantities, reservation.c.status)
            .where(reservation.c.order_id == cmd.order_id)
            .with_for_update(),
        )
    ).first()
    if row is None:
        # Release before reserve: leave a tombstone so a late reserve is refused.
        await tx.session.execute(insert(reservation).values(order_id=cmd.order_id, quantities={}, status="released"))
        return InventoryReleased(order_id=cmd.order_id)
    if row.status == "live":
        for sku, quantity in sorted(row.quantities.items()):
            await tx.session.execute(
                update(product).where(product.c.sku == sku).values(reserved=product.c.reserved - quantity),
            )
        await tx.session.execute(
            update(reservation).where(reservation.c.order_id == cmd.order_id).values(status="released"),
        )
    return InventoryReleased(order_id=cmd.order_id)
