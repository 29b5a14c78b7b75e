"""The invariant audit of DESIGN §3, by querying every service's own tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class AuditReport:
    sagas: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


_SAGAS = text(
    "SELECT id, status, data->'input'->>'order_id' AS order_id, "
    "(SELECT coalesce(sum((i->>'quantity')::bigint * (i->>'unit_price_cents')::bigint), 0) "
    " FROM jsonb_array_elements(data->'input'->'items') AS i) AS amount "
    "FROM sagaline.saga_instance WHERE id = ANY(:ids) OR :all_sagas",
)


async def audit(engine: AsyncEngine, saga_ids: list[str] | None = None) -> AuditReport:  # noqa: C901, PLR0912
    """Check every invariant; ``saga_ids`` limits the per-saga checks (stock is always checked whole)."""
    report = AuditReport()
    async with engine.connect() as conn:
        sagas = (await conn.execute(_SAGAS, {"ids": saga_ids or [], "all_sagas": saga_ids is None})).all()
        orders = await _by_order(conn, "SELECT order_id, status FROM order_svc.orders")
        charges = await _by_order(conn, "SELECT order_id, status, amount_cents FROM payment_svc.charge")
        reservations = await _by_order(conn, "SELECT order_id, status FROM inventory_svc.reservation")
        shipments = await _by_order(conn, "SELECT order_id, status FROM shipment_svc.shipment")
        stock = (
            await conn.execute(
                text(
                    "SELECT p.sku, p.on_hand, p.reserved, coalesce(sum((r.quantities->>p.sku)::int), 0) AS live "
                    "FROM inventory_svc.product p LEFT JOIN inventory_svc.reservation r "
                    "ON r.status = 'live' AND r.quantities ? p.sku GROUP BY p.sku, p.on_hand, p.reserved",
                ),
            )
        ).all()
        balances = (
            await conn.execute(
                text(
                    "SELECT c.customer_id, c.outstanding_cents, coalesce(sum(ch.amount_cents), 0) AS charged "
                    "FROM payment_svc.customer c LEFT JOIN payment_svc.charge ch "
                    "ON ch.customer_id = c.customer_id AND ch.status = 'charged' "
                    "GROUP BY c.customer_id, c.outstanding_cents",
                ),
            )
        ).all()
        twice = (
            await conn.execute(
                text(
                    "SELECT saga_id, step, type, count(*) FROM sagaline.saga_event "
                    "WHERE type IN ('step_completed', 'step_compensated') "
                    "GROUP BY saga_id, step, type HAVING count(*) > 1",
                ),
            )
        ).all()
    report.sagas = len(sagas)
    for saga in sagas:
        report.by_status[saga.status] = report.by_status.get(saga.status, 0) + 1
        oid, where = saga.order_id, f"saga {saga.id}"
        order, charge = orders.get(oid), charges.get(oid)
        reservation, shipment = reservations.get(oid), shipments.get(oid)
        if saga.status in {"running", "compensating"}:
            report.violations.append(f"{where}: not terminal ({saga.status})")
        elif saga.status == "failed":
            report.violations.append(f"{where}: failed (needs an operator)")
        elif saga.status == "completed":
            if order is None or order["status"] != "approved":
                report.violations.append(f"{where}: completed but order is {_s(order)}")
            if charge is None or charge["status"] != "charged" or charge["amount_cents"] != saga.amount:
                report.violations.append(f"{where}: completed but charge is {charge}")
            if reservation is None or reservation["status"] != "live":
                report.violations.append(f"{where}: completed but reservation is {_s(reservation)}")
            if shipment is None or shipment["status"] != "scheduled":
                report.violations.append(f"{where}: completed but shipment is {_s(shipment)}")
        elif saga.status == "compensated":
            if order is not None and order["status"] != "cancelled":
                report.violations.append(f"{where}: compensated but order is {_s(order)}")
            if charge is not None and charge["status"] != "refunded":
                report.violations.append(f"{where}: compensated but money is still charged")
            if reservation is not None and reservation["status"] != "released":
                report.violations.append(f"{where}: compensated but a reservation is live")
            if shipment is not None and shipment["status"] != "cancelled":
                report.violations.append(f"{where}: compensated but a shipment is scheduled")
    for row in stock:
        if row.reserved != row.live:
            report.violations.append(
                f"stock {row.sku}: reserved={row.reserved} but live reservations sum to {row.live}"
            )
        if row.reserved > row.on_hand or row.reserved < 0:
            report.violations.append(f"stock {row.sku}: reserved={row.reserved} outside 0..{row.on_hand}")
    report.violations += [
        f"customer {row.customer_id}: outstanding={row.outstanding_cents} but live charges sum to {row.charged}"
        for row in balances
        if row.outstanding_cents != row.charged
    ]
    report.violations += [f"saga {r.saga_id}: {r.type} for {r.step} recorded {r[3]} times" for r in twice]
    return report


def _s(row: Mapping[str, object] | None) -> str:
    return "missing" if row is None else str(row["status"])


async def _by_order(conn: object, sql: str) -> dict[str, dict[str, object]]:
    rows = (await conn.execute(text(sql))).mappings().all()  # type: ignore[attr-defined]
    return {r["order_id"]: dict(r) for r in rows}
