"""The order plan every peer and compare.py share: the saga's steps, and which orders fail where (standard library).

The same orders as Sagaline's demo catalog (``orchestrator/launch/_catalog.py``: ``plan_orders``, ``scenario_for``;
tests/integration/test_bench_peers.py checks they agree), so every peer and Sagaline run the same business.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

STEPS = ("create_order", "reserve_inventory", "charge_payment", "schedule_shipment", "approve_order")
COMPENSATION = {
    "create_order": "cancel_order",
    "reserve_inventory": "release_inventory",
    "charge_payment": "refund_payment",
    "schedule_shipment": "cancel_shipment",
}
# Scenario -> the step designed to refuse it (the demo catalog's four failing scenarios, in its order).
FAILING_STEP = {
    "rejected_order": "create_order",
    "sold_out": "reserve_inventory",
    "over_limit": "charge_payment",
    "unserved": "schedule_shipment",
}
COMPLETED, COMPENSATED, FAILED = "completed", "compensated", "failed"


def scenario_for(slot: int, failure_share: float) -> str:
    """Of every 100 orders, ``round(failure_share * 100)`` fail, spread as evenly as they go over the four failing
    steps, the earlier steps taking the remainder (10 %: 3, 3, 2 and 2): the demo catalog's rule."""
    failing, position = round(failure_share * 100), slot % 100
    for rank, scenario in enumerate(FAILING_STEP):
        share = failing // len(FAILING_STEP) + (rank < failing % len(FAILING_STEP))
        if position < share:
            return scenario
        position -= share
    return "ok"


@dataclass(frozen=True)
class Order:
    order_id: str
    scenario: str
    customer_id: str
    sku: str
    quantity: int
    unit_price_cents: int
    country: str

    @property
    def amount_cents(self) -> int:
        return self.quantity * self.unit_price_cents

    @property
    def expected(self) -> str:
        return COMPLETED if self.scenario == "ok" else COMPENSATED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_orders(count: int, failure_share: float, run_id: str) -> list[Order]:
    """The same orders as the demo catalog's ``plan_orders`` (ids aside): what fails, where, and why."""
    orders = []
    for i in range(count):
        scenario = scenario_for((i * 37) % 100, failure_share)
        fields: dict[str, Any] = {"customer_id": f"cust-{1 + i % 10}", "sku": ("SKU-1", "SKU-2", "SKU-3")[i % 3]}
        fields |= {"quantity": 1, "unit_price_cents": 1500, "country": "DE"}
        fields |= {
            "rejected_order": {"sku": "SKU-1", "quantity": 10, "unit_price_cents": 600_000},
            "sold_out": {"sku": "SKU-SOLDOUT"},
            "over_limit": {"sku": "SKU-1", "customer_id": "cust-broke"},
            "unserved": {"sku": "SKU-1", "country": "AQ"},
        }.get(scenario, {})
        orders.append(Order(order_id=f"{run_id}-{i:05d}", scenario=scenario, **fields))
    return orders


def designed_outcomes(count: int, failure_share: float) -> Counter[str]:
    """How many of a run's sagas must complete and how many must compensate."""
    return Counter(order.expected for order in plan_orders(count, failure_share, "design"))
