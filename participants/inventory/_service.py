"""The inventory service: stock per SKU and reservations per order. Stock never goes negative."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

from contracts import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReleaseInventory,
    Reply,
    ReserveInventory,
)
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

# Built once, executed with parameters: SQLAlchemy then skips building and keying the statement per command.
_reservation_status = select(reservation.c.status).where(reservation.c.order_id == bindparam("order"))
# One round trip locks the stock rows (in SKU order, so concurrent reservations never deadlock) and reads
# whether the order already has a reservation; the primary key refuses a concurrent second one.
_lock_stock = (
    select(
        product.c.sku,
        product.c.on_hand,
        product.c.reserved,
        _reservation_status.scalar_subquery().label("existing"),
    )
    .where(product.c.sku == any_(bindparam("skus", type_=ARRAY(Text))))
    .order_by(product.c.sku)
    .with_for_update(of=product)
)
# And one more takes the stock and records the reservation.
_wanted = (
    func.unnest(bindparam("skus", type_=ARRAY(Text)), bindparam("counts", type_=ARRAY(Integer)))
    .table_valued("sku", "quantity")
    .render_derived(with_types=False)
    .alias("wanted")
)
_take_stock = (
    update(product)
    .where(product.c.sku == _wanted.c.sku)
    .values(reserved=product.c.reserved + _wanted.c.quantity)
    .cte("take_stock")
)
_reserve = insert(reservation).add_cte(_take_stock)


@inventory.handles(ReserveInventory)
async def reserve(tx: LocalTransaction, cmd: ReserveInventory) -> Reply:
    wanted: dict[str, int] = defaultdict(int)
    for item in cmd.items:
        wanted[item.sku] += item.quantity
    rows = (await tx.session.execute(_lock_stock, {"order": cmd.order_id, "skus": sorted(wanted)})).all()
    existing = (
        rows[0].existing
        if rows
        else (await tx.session.execute(_reservation_status, {"order": cmd.order_id})).scalar_one_or_none()
    )
    if existing is not None:
        return InventoryReservationFailed(order_id=cmd.order_id, reason=f"order already has a {existing} reservation")
    stock = {r.sku: r.on_hand - r.reserved for r in rows}
    for sku, quantity in sorted(wanted.items()):
        if sku not in stock:
            return InventoryReservationFailed(order_id=cmd.order_id, reason=f"unknown sku {sku}")
        if stock[sku] < quantity:
            return InventoryReservationFailed(
                order_id=cmd.order_id,
                reason=f"not enough stock for {sku}: {stock[sku]} available, {quantity} wanted",
            )
    await tx.session.execute(
        _reserve,
        {
            "skus": list(wanted),
            "counts": list(wanted.values()),
            "order_id": cmd.order_id,
            "quantities": dict(wanted),
            "status": "live",
        },
    )
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
