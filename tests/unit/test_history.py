"""State as of a time, and rebuilding a saga from its recorded inputs through the pure engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import (
    Address,
    InventoryReleased,
    InventoryReserved,
    LineItem,
    OrderCancelled,
    OrderCreated,
    PaymentDeclined,
    PlaceOrder,
    Reply,
)
from orchestrator import definition as engine
from orchestrator.definition import Actions, SagaState, SagaStatus
from orchestrator.persistence import snapshot
from orchestrator.runtime import RebuildError, rebuild, state_as_of
from orchestrator.sagas import ORDER_FULFILLMENT

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORDER = PlaceOrder(
    order_id="o-1",
    saga_id="s-1",
    customer_id="c-1",
    items=(LineItem(sku="SKU-1", quantity=1, unit_price_cents=100),),
    address=Address(line1="1 A St", city="B", country="DE"),
)


class Log:
    """Records transitions the way the manager does: entries in order, the state snapshot on the last one."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.state: SagaState | None = None

    def record(self, actions: Actions, at: datetime) -> None:
        assert not actions.ignored
        for i, entry in enumerate(actions.history):
            payload = dict(entry.payload)
            if i == len(actions.history) - 1:
                payload["state"] = snapshot(actions.state)
            self.events.append({"seq": len(self.events) + 1, "type": entry.type, "payload": payload, "at": at})
        self.state = actions.state

    def reply(self, reply: Reply, at: datetime) -> None:
        assert self.state is not None
        actions = engine.on_reply(
            ORDER_FULFILLMENT,
            self.state,
            reply,
            causation_id=self.state.pending_command_id,
            attempt=self.state.attempt,
            now=at,
        )
        self.record(actions, at)


def test_rebuild_replays_retries_timeouts_and_compensation_to_the_stored_state() -> None:
    log = Log()
    log.record(engine.start(ORDER_FULFILLMENT, "s-1", ORDER, T0), T0)
    log.reply(OrderCreated(order_id="o-1"), T0 + timedelta(seconds=1))
    assert log.state is not None
    log.record(
        engine.on_timeout(ORDER_FULFILLMENT, log.state, log.state.deadline_at or T0), log.state.deadline_at or T0
    )
    log.reply(InventoryReserved(order_id="o-1"), T0 + timedelta(seconds=40))
    log.reply(PaymentDeclined(order_id="o-1", reason="glitch", retryable=True), T0 + timedelta(seconds=41))
    assert log.state.waiting == "retry"
    assert log.state.deadline_at is not None
    retry_at = log.state.deadline_at
    log.record(engine.on_timeout(ORDER_FULFILLMENT, log.state, retry_at), retry_at)
    log.reply(PaymentDeclined(order_id="o-1", reason="over the limit"), retry_at + timedelta(seconds=1))
    assert log.state.status is SagaStatus.COMPENSATING
    assert log.state.step == "reserve_inventory"
    log.reply(InventoryReleased(order_id="o-1"), retry_at + timedelta(seconds=2))
    log.reply(OrderCancelled(order_id="o-1"), retry_at + timedelta(seconds=3))
    assert log.state.status is SagaStatus.COMPENSATED

    assert rebuild(ORDER_FULFILLMENT, "s-1", log.events) == snapshot(log.state)


def test_state_as_of_reads_the_snapshot_of_the_last_transition_before_the_time() -> None:
    log = Log()
    log.record(engine.start(ORDER_FULFILLMENT, "s-1", ORDER, T0), T0)
    log.reply(OrderCreated(order_id="o-1"), T0 + timedelta(seconds=5))
    assert state_as_of(log.events, T0 - timedelta(seconds=1)) is None
    early = state_as_of(log.events, T0 + timedelta(seconds=1))
    assert early is not None
    assert early["step"] == "create_order"
    late = state_as_of(log.events, T0 + timedelta(seconds=5))
    assert late is not None
    assert late["step"] == "reserve_inventory"
    assert late["completed_steps"] == ["create_order"]


def test_a_tampered_history_does_not_rebuild() -> None:
    log = Log()
    log.record(engine.start(ORDER_FULFILLMENT, "s-1", ORDER, T0), T0)
    log.reply(OrderCreated(order_id="o-1"), T0 + timedelta(seconds=1))
    reply = next(e for e in log.events if e["type"] == "reply_received")
    reply["payload"]["causation_id"] = "someone-else"  # the reply no longer answers the command
    with pytest.raises(RebuildError, match="ignores the recorded reply_received"):
        rebuild(ORDER_FULFILLMENT, "s-1", log.events)
    with pytest.raises(RebuildError, match="no 'started' event"):
        rebuild(ORDER_FULFILLMENT, "s-1", [])
