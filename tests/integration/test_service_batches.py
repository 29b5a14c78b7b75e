"""The four services' batch handlers over real Postgres: commands of one batch are decided in order, each seeing
what the earlier ones did (stock taken, credit used, an order created), exactly as if they had come one by one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import (
    Address,
    ApproveOrder,
    ChargePayment,
    Command,
    CreateOrder,
    LineItem,
    RefundPayment,
    ReserveInventory,
    ScheduleShipment,
)
from orchestrator.messaging import Written
from orchestrator.migrate import upgrade
from orchestrator.persistence import create_engine
from orchestrator.settings import Settings
from participants.kit import Participant
from participants.order._service import MAX_ORDER_CENTS
from participants.registry import PARTICIPANTS
from tests.support.kit import command_record

pytestmark = pytest.mark.integration


@dataclass
class Services:
    db: AsyncEngine
    tag: str  # makes this test's order ids, SKUs and customers its own

    def id(self, name: str) -> str:
        return f"{name}-{self.tag}"

    async def run(self, participant: str, commands: Sequence[Command]) -> list[tuple[str, str]]:
        """One batch of ``commands`` through the service's processor; its replies as (saga id, "type: reason"), the
        saga named after each command's order."""
        published: list[Written] = []
        kit: Participant = PARTICIPANTS[participant]
        processor = kit.processor(self.db, Settings(), publish=published.append)
        outcomes = await processor.process_batch([command_record(c, n) for n, c in enumerate(commands)])
        assert outcomes == [None] * len(commands)
        (written,) = published
        async with self.db.begin() as conn:  # the replies are not for any running saga: nobody is to send them
            await conn.execute(
                text(f"DELETE FROM {kit.schema}.outbox WHERE id = ANY(:ids)"), {"ids": list(written.ids)}
            )
        return [
            (r.headers["sagaline-saga-id"], f"{r.payload['type']}: {r.payload.get('reason', '')}".rstrip(": "))
            for r in written.records
        ]


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    await asyncio.to_thread(upgrade, database_url)
    db = create_engine(database_url, pool_size=2)
    try:
        yield Services(db=db, tag=uuid.uuid4().hex[:8])
    finally:
        await db.dispose()


def _reserve(order_id: str, sku: str, quantity: int) -> ReserveInventory:
    return ReserveInventory(order_id=order_id, items=(LineItem(sku=sku, quantity=quantity, unit_price_cents=1),))


async def test_reservations_in_one_batch_take_from_the_stock_the_next_one_sees(services: Services) -> None:
    sku, o1, o2, o3 = services.id("SKU"), services.id("o1"), services.id("o2"), services.id("o3")
    async with services.db.begin() as conn:
        await conn.execute(text("INSERT INTO inventory_svc.product (sku, on_hand) VALUES (:sku, 3)"), {"sku": sku})

    replies = await services.run(
        "inventory", [_reserve(o1, sku, 2), _reserve(o2, sku, 2), _reserve(o3, sku, 1), _reserve(o1, sku, 1)]
    )

    assert replies == [
        (o1, "InventoryReserved"),
        (o2, f"InventoryReservationFailed: not enough stock for {sku}: 1 available, 2 wanted"),
        (o3, "InventoryReserved"),
        (o1, "InventoryReservationFailed: order already has a live reservation"),
    ]
    async with services.db.connect() as conn:
        reserved = await conn.execute(text("SELECT reserved FROM inventory_svc.product WHERE sku = :s"), {"s": sku})
        assert reserved.scalar_one() == 3
        rows = await conn.execute(
            text("SELECT order_id, quantities FROM inventory_svc.reservation WHERE order_id = ANY(:ids) ORDER BY 1"),
            {"ids": [o1, o2, o3]},
        )
        assert [tuple(r) for r in rows] == [(o1, {sku: 2}), (o3, {sku: 1})]


async def test_charges_in_one_batch_count_towards_the_limit_the_next_one_is_checked_against(
    services: Services,
) -> None:
    customer, o1, o2, o3 = services.id("cust"), services.id("o1"), services.id("o2"), services.id("o3")
    await _new_customer(services, customer, limit_cents=100)

    def charge(order_id: str, cents: int, who: str = customer) -> ChargePayment:
        return ChargePayment(order_id=order_id, customer_id=who, amount_cents=cents)

    replies = await services.run(
        "payment", [charge(o1, 60), charge(o2, 50), charge(o3, 40), charge(o1, 10), charge(o2, 1, who="nobody")]
    )

    assert [(o, r.split(":")[0]) for o, r in replies] == [
        (o1, "PaymentCharged"),
        (o2, "PaymentDeclined"),
        (o3, "PaymentCharged"),
        (o1, "PaymentDeclined"),
        (o2, "PaymentDeclined"),
    ]
    assert replies[1][1].endswith("over the credit limit: 60 + 50 > 100 cents")
    assert replies[3][1].endswith("order already has a charged charge")
    assert replies[4][1].endswith("unknown customer nobody")
    async with services.db.connect() as conn:
        rows = await conn.execute(
            text("SELECT order_id, amount_cents FROM payment_svc.charge WHERE customer_id = :c ORDER BY 1"),
            {"c": customer},
        )
        assert [tuple(r) for r in rows] == [(o1, 60), (o3, 40)]
    assert await _balance(services, customer) == 100


async def test_charges_one_per_batch_see_the_balance_the_earlier_ones_left_and_refunds_take_it_back(
    services: Services,
) -> None:
    customer, o1, o2, o3 = services.id("cust"), services.id("o1"), services.id("o2"), services.id("o3")
    await _new_customer(services, customer, limit_cents=100)

    def charge(order_id: str, cents: int, who: str = customer) -> list[Command]:
        return [ChargePayment(order_id=order_id, customer_id=who, amount_cents=cents)]

    replies = [
        *await services.run("payment", charge(o1, 60)),
        *await services.run("payment", charge(o2, 50)),
        *await services.run("payment", charge(o1, 10)),
        *await services.run("payment", charge(o2, 1, who="nobody")),
    ]
    assert await _balance(services, customer) == 60
    refunds = await services.run("payment", [RefundPayment(order_id=o1), RefundPayment(order_id=o3)])
    after_refund = await services.run("payment", [*charge(o2, 50), *charge(o3, 10)])

    assert replies[0][1] == "PaymentCharged"
    assert replies[1][1] == "PaymentDeclined: over the credit limit: 60 + 50 > 100 cents"
    assert replies[2][1] == "PaymentDeclined: order already has a charged charge"
    assert replies[3][1] == "PaymentDeclined: unknown customer nobody"
    assert [r for _, r in refunds] == ["PaymentRefunded", "PaymentRefunded"]
    assert [r for _, r in after_refund] == [
        "PaymentCharged",
        "PaymentDeclined: order already has a refunded charge",  # refunded before it was charged: a tombstone
    ]
    assert await _balance(services, customer) == 50


async def _new_customer(services: Services, customer: str, *, limit_cents: int) -> None:
    async with services.db.begin() as conn:
        await conn.execute(
            text("INSERT INTO payment_svc.customer (customer_id, credit_limit_cents) VALUES (:c, :limit)"),
            {"c": customer, "limit": limit_cents},
        )


async def _balance(services: Services, customer: str) -> int:
    async with services.db.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT outstanding_cents FROM payment_svc.customer WHERE customer_id = :c"), {"c": customer}
                )
            ).scalar_one()
        )


async def test_orders_created_and_approved_in_one_batch_see_each_other(services: Services) -> None:
    o1, big, missing = services.id("o1"), services.id("big"), services.id("missing")

    def create(order_id: str, cents: int = 10) -> CreateOrder:
        return CreateOrder(order_id=order_id, customer_id="c", amount_cents=cents)

    created = await services.run("order", [create(o1), create(o1), create(big, MAX_ORDER_CENTS + 1)])
    approved = await services.run(
        "order", [ApproveOrder(order_id=o1), ApproveOrder(order_id=o1), ApproveOrder(order_id=missing)]
    )

    assert created == [
        (o1, "OrderCreated"),
        (o1, f"CommandFailed: order {o1} already exists (created)"),
        (big, f"OrderRejected: order exceeds the maximum of {MAX_ORDER_CENTS} cents"),
    ]
    assert approved == [
        (o1, "OrderApproved"),
        (o1, "OrderApproved"),
        (missing, f"CommandFailed: order {missing} cannot be approved (missing)"),
    ]


async def test_one_shipment_per_order_in_one_batch(services: Services) -> None:
    o1, o2 = services.id("o1"), services.id("o2")

    def schedule(order_id: str, country: str = "DE") -> ScheduleShipment:
        return ScheduleShipment(order_id=order_id, address=Address(line1="1 Way", city="Town", country=country))

    replies = await services.run("shipment", [schedule(o1), schedule(o1), schedule(o2, "AQ")])

    assert [(o, r.split(":")[0]) for o, r in replies] == [
        (o1, "ShipmentScheduled"),
        (o1, "ShipmentRejected"),
        (o2, "ShipmentRejected"),
    ]
    assert replies[1][1].endswith("order already has a shipment record")
    assert replies[2][1].endswith("we do not ship to AQ")
