"""Driving the pure engine in tests: one saga instance, its state, and what every transition produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts import (
    Address,
    CommandFailed,
    InventoryReservationFailed,
    LineItem,
    PaymentDeclined,
    PlaceOrder,
    Reply,
    ShipmentRejected,
)
from orchestrator.definition import (
    Actions,
    HistoryEntry,
    OutboundCommand,
    SagaDefinition,
    SagaState,
    SagaStatus,
    on_reply,
    on_timeout,
    start,
)
from orchestrator.sagas import ORDER_FULFILLMENT
from tests.support.order_replies import ORDER_ID, SUCCESS, UNDONE

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SAGA_ID = "saga-1"
PLACE_ORDER = PlaceOrder(
    order_id=ORDER_ID,
    customer_id="c-1",
    items=(LineItem(sku="sku-1", quantity=2, unit_price_cents=500),),
    address=Address(line1="1 Main St", city="Springfield", country="US"),
    saga_id=SAGA_ID,
)


def refusal(step: str, *, retryable: bool = False, reason: str = "refused", error_type: str = "business") -> Reply:
    """The step's declared failure reply (or the kit's generic ``CommandFailed``)."""
    kwargs: dict[str, Any] = {"reason": reason, "retryable": retryable, "error_type": error_type}
    match step:
        case "reserve_inventory":
            return InventoryReservationFailed(order_id=ORDER_ID, **kwargs)
        case "charge_payment":
            return PaymentDeclined(order_id=ORDER_ID, **kwargs)
        case "schedule_shipment":
            return ShipmentRejected(order_id=ORDER_ID, **kwargs)
        case _:
            return CommandFailed(**kwargs)


@dataclass
class Saga:
    """One saga instance under test: its latest state and every command and event it produced."""

    definition: SagaDefinition[Any]
    state: SagaState
    now: datetime = T0
    commands: list[OutboundCommand] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)

    def apply(self, actions: Actions) -> Actions:
        self.state = actions.state
        self.commands += actions.commands
        self.events += actions.events
        self.history += actions.history
        return actions

    def deliver(self, reply: Reply, causation_id: str | None, attempt: int) -> Actions:
        """What the engine makes of ``reply``; the saga itself is left as it was."""
        return on_reply(self.definition, self.state, reply, causation_id=causation_id, attempt=attempt, now=self.now)

    def answer(self, reply: Reply) -> Actions:
        """Reply to the pending command, as a participant would: same causation id, same attempt."""
        return self.apply(self.deliver(reply, self.state.pending_command_id, self.state.attempt))

    def timeout(self, at: datetime | None = None) -> Actions:
        """The sweeper fires at ``at`` (default: the current deadline)."""
        when = at or self.state.deadline_at
        assert when is not None
        self.now = when
        return self.apply(on_timeout(self.definition, self.state, self.now))

    def succeed_until(self, step: str) -> None:
        while self.state.step != step:
            assert self.state.step is not None, f"never reached {step}"
            self.answer(SUCCESS[self.state.step])

    def undo_all(self) -> list[str]:
        """Answer every compensation with success; the compensation command types, in order."""
        sent: list[str] = []
        while self.state.status is SagaStatus.COMPENSATING:
            sent.append(self.commands[-1].command.type_name())
            assert self.state.step is not None
            self.answer(UNDONE[self.state.step])
        return sent


def begin(definition: SagaDefinition[Any] = ORDER_FULFILLMENT, command: PlaceOrder = PLACE_ORDER) -> Saga:
    actions = start(definition, SAGA_ID, command, T0)
    run = Saga(definition=definition, state=actions.state)
    run.apply(actions)
    return run


def at_step(step: str) -> Saga:
    run = begin()
    run.succeed_until(step)
    return run


def history_types(actions: Actions) -> list[str]:
    return [h.type for h in actions.history]


def assert_ignored(actions: Actions, before: SagaState) -> None:
    assert actions.ignored
    assert actions.state == before
    assert actions.commands == ()
    assert actions.events == ()
    assert actions.history == ()
