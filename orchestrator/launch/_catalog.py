"""Demo and test data: a catalog, customers, and a batch of orders with a designed share failing at each step."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Address, LineItem, PlaceOrder

PRODUCTS = {"SKU-1": 1_000_000, "SKU-2": 1_000_000, "SKU-3": 1_000_000, "SKU-SOLDOUT": 0}
CUSTOMERS = {**{f"cust-{i}": 10**12 for i in range(1, 11)}, "cust-broke": 100}
UNSERVED_COUNTRY = "AQ"


class Scenario(StrEnum):
    """What an order is designed to do, and so what its saga must end as."""

    OK = "ok"
    REJECTED_ORDER = "rejected_order"  # create_order fails: over the maximum order value
    SOLD_OUT = "sold_out"  # reserve_inventory fails
    OVER_LIMIT = "over_limit"  # charge_payment fails
    UNSERVED = "unserved"  # schedule_shipment fails

    @property
    def expected_status(self) -> str:
        return "completed" if self is Scenario.OK else "compensated"

    @property
    def failing_step(self) -> str | None:
        return {
            Scenario.OK: None,
            Scenario.REJECTED_ORDER: "create_order",
            Scenario.SOLD_OUT: "reserve_inventory",
            Scenario.OVER_LIMIT: "charge_payment",
            Scenario.UNSERVED: "schedule_shipment",
        }[self]


FAILING = (Scenario.REJECTED_ORDER, Scenario.SOLD_OUT, Scenario.OVER_LIMIT, Scenario.UNSERVED)


@dataclass(frozen=True)
class PlannedOrder:
    scenario: Scenario
    command: PlaceOrder


def scenario_for(index: int, failure_share: float) -> Scenario:
    """Deterministic: of every 100 orders, ``failure_share`` x 100 fail, spread as evenly as they go over the
    four steps (10 %: 3, 3, 2 and 2 of every 100)."""
    failing = round(failure_share * 100)
    slot, first = index % 100, 0
    for position, scenario in enumerate(FAILING):
        share = failing // len(FAILING) + (1 if position < failing % len(FAILING) else 0)
        if first <= slot < first + share:
            return scenario
        first += share
    return Scenario.OK


def plan_orders(count: int, *, failure_share: float = 0.2, run_id: str | None = None) -> list[PlannedOrder]:
    run = run_id or uuid.uuid4().hex[:8]
    planned: list[PlannedOrder] = []
    for i in range(count):
        scenario = scenario_for((i * 37) % 100, failure_share)
        order_id = f"{run}-{i:05d}"
        sku, quantity, price, customer, country = "SKU-1", 1, 1500, f"cust-{1 + i % 10}", "DE"
        if scenario is Scenario.REJECTED_ORDER:
            quantity, price = 10, 600_000
        elif scenario is Scenario.SOLD_OUT:
            sku = "SKU-SOLDOUT"
        elif scenario is Scenario.OVER_LIMIT:
            customer = "cust-broke"
        elif scenario is Scenario.UNSERVED:
            country = UNSERVED_COUNTRY
        else:
            sku = ("SKU-1", "SKU-2", "SKU-3")[i % 3]
        planned.append(
            PlannedOrder(
                scenario=scenario,
                command=PlaceOrder(
                    order_id=order_id,
                    saga_id=order_id,
                    customer_id=customer,
                    items=(LineItem(sku=sku, quantity=quantity, unit_price_cents=price),),
                    address=Address(line1=f"{i} Demo Street", city="Springfield", country=country),
                ),
            ),
        )
    return planned


async def seed_catalog(engine: AsyncEngine) -> None:
    """Idempotent: products keep their stock if they exist; customers keep their limits."""
    async with engine.begin() as conn:
        for sku, on_hand in PRODUCTS.items():
            await conn.execute(
                text("INSERT INTO inventory_svc.product (sku, on_hand) VALUES (:sku, :on_hand) ON CONFLICT DO NOTHING"),
                {"sku": sku, "on_hand": on_hand},
            )
        for customer_id, limit in CUSTOMERS.items():
            await conn.execute(
                text(
                    "INSERT INTO payment_svc.customer (customer_id, credit_limit_cents) VALUES (:c, :l) "
                    "ON CONFLICT DO NOTHING",
                ),
                {"c": customer_id, "l": limit},
            )
