"""Stateful property tests: the order saga under random replies, duplicates, reordering, timeouts and cancels.

The participants are modelled the way the participant kit works: each has a FIFO command queue (one
partition per saga keeps a saga's commands in order) and an inbox keyed by message id that answers a
duplicate command with the stored reply instead of doing the work again. Replies travel to the
orchestrator over a channel that may reorder, duplicate and lose them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

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
from orchestrator.definition import Actions, OutboundCommand, SagaStatus, cancel, on_reply, on_timeout, resume, start
from orchestrator.sagas import ORDER_FULFILLMENT
from tests.support.order_replies import ORDER_ID, SUCCESS, UNDONE

T0 = datetime(2025, 1, 1, tzinfo=UTC)
STEPS = tuple(s.name for s in ORDER_FULFILLMENT.steps)
COMPENSABLE = frozenset(s.name for s in ORDER_FULFILLMENT.steps if s.compensation is not None)
PARTICIPANTS = ("order", "inventory", "payment", "shipment")
# Enough for the worst teardown: every attempt of every step and compensation times out once, plus a resume.
DRIVE_LIMIT = 400

Outcome = Literal["ok", "refused", "transient"]
Direction = Literal["do", "undo"]


@dataclass(frozen=True)
class Delivery:
    """A reply on its way to the orchestrator, with the envelope fields the engine reads."""

    reply: Reply
    causation_id: str
    attempt: int


def success_of(command: OutboundCommand) -> Reply:
    return (UNDONE if command.compensation else SUCCESS)[command.step]


def failure_of(command: OutboundCommand, *, retryable: bool) -> Reply:
    reason = "transient glitch" if retryable else "refused"
    if command.compensation:
        return CommandFailed(reason=reason, retryable=retryable)
    match command.step:
        case "reserve_inventory":
            return InventoryReservationFailed(order_id=ORDER_ID, reason=reason, retryable=retryable)
        case "charge_payment":
            return PaymentDeclined(order_id=ORDER_ID, reason=reason, retryable=retryable)
        case "schedule_shipment":
            return ShipmentRejected(order_id=ORDER_ID, reason=reason, retryable=retryable)
        case _:
            return CommandFailed(reason=reason, retryable=retryable)


def expected_compensations(forward: list[str], *, include_current: bool) -> list[str]:
    """Reverse order over the steps that succeeded, plus the in-doubt step when no failure reply settled it."""
    done = forward if include_current else forward[:-1]
    return [s for s in reversed(done) if s in COMPENSABLE]


class OrderSagaUnderChaos(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.queues: dict[str, deque[OutboundCommand]] = {p: deque() for p in PARTICIPANTS}
        self.inbox: dict[str, Delivery] = {}  # message id -> stored reply (with the attempt it answered)
        self.applied: list[tuple[str, Direction]] = []  # effects, in the order participants committed them
        self.channel: list[Delivery] = []  # replies not yet seen by the orchestrator
        self.delivered: list[Delivery] = []  # replies the orchestrator has seen
        self.forward_ids: dict[str, str] = {}
        self.forward_sent: list[str] = []  # forward steps, in order of their first command
        self.undo_sent: list[str] = []  # compensated steps, in order of their first compensation command
        self.undo_expected: list[str] | None = None
        actions = start(ORDER_FULFILLMENT, "saga-1", self.place_order(), self.now)
        self.state = actions.state
        self.record(actions, include_current=True)

    @staticmethod
    def place_order() -> PlaceOrder:
        return PlaceOrder(
            order_id=ORDER_ID,
            customer_id="c-1",
            items=(LineItem(sku="sku-1", quantity=1, unit_price_cents=100),),
            address=Address(line1="1 Main St", city="Springfield", country="US"),
        )

    # --- bookkeeping -------------------------------------------------------------------------

    def record(self, actions: Actions, *, include_current: bool) -> None:
        """Apply a transition and check what it sent. ``include_current``: whether this kind of input
        (timeout, expiry, cancel) leaves the current step in doubt, unlike a failure reply."""
        self.state = actions.state
        for entry in actions.history:
            if entry.type == "compensation_started":
                assert self.undo_expected is None, "compensation started twice"
                self.undo_expected = expected_compensations(self.forward_sent, include_current=include_current)
                assert list(entry.payload["to_compensate"]) == self.undo_expected
        for command in actions.commands:
            self.queues[command.participant].append(command)
            if command.compensation:
                if not self.undo_sent or self.undo_sent[-1] != command.step:
                    assert command.step not in self.undo_sent, f"compensation went back to {command.step}"
                    self.undo_sent.append(command.step)
            else:
                assert self.undo_expected is None, "a forward command after compensation started"
                known = self.forward_ids.setdefault(command.step, command.message_id)
                assert known == command.message_id, f"{command.step} was re-sent under a new message id"
                if command.step not in self.forward_sent:
                    self.forward_sent.append(command.step)
                    assert tuple(self.forward_sent) == STEPS[: len(self.forward_sent)]

    def receive(self, delivery: Delivery) -> Actions:
        before = self.state
        actions = on_reply(
            ORDER_FULFILLMENT,
            before,
            delivery.reply,
            causation_id=delivery.causation_id,
            attempt=delivery.attempt,
            now=self.now,
        )
        if not before.status.is_live or delivery.causation_id != before.pending_command_id:
            assert actions.ignored
        if actions.ignored:
            assert actions.state == before
            assert (actions.commands, actions.events, actions.history) == ((), (), ())
        self.record(actions, include_current=False)
        self.delivered.append(delivery)
        return actions

    def handle(self, participant: str, outcome: Outcome, *, keep_transient: bool, echo_attempt: bool) -> None:
        """The participant takes the next command off its queue and replies."""
        command = self.queues[participant].popleft()
        stored = self.inbox.get(command.message_id)
        if stored is not None:  # a duplicate: answer from the inbox, do not do the work again
            attempt = command.attempt if echo_attempt else stored.attempt
            self.channel.append(Delivery(stored.reply, command.message_id, attempt))
            return
        if outcome == "ok":
            effect: tuple[str, Direction] = (command.step, "undo" if command.compensation else "do")
            if not command.compensation:
                assert effect not in self.applied, f"forward step {command.step} applied twice"
            self.applied.append(effect)
            reply = Delivery(success_of(command), command.message_id, command.attempt)
        else:
            reply = Delivery(failure_of(command, retryable=outcome == "transient"), command.message_id, command.attempt)
        if outcome != "transient" or keep_transient:
            self.inbox[command.message_id] = reply
        self.channel.append(reply)

    # --- rules -------------------------------------------------------------------------------

    @precondition(lambda self: any(self.queues.values()))
    @rule(
        pick=st.integers(min_value=0, max_value=3),
        outcome=st.sampled_from(["ok", "ok", "ok", "ok", "refused", "transient", "transient"]),
        keep_transient=st.booleans(),
        echo_attempt=st.booleans(),
    )
    def participant_handles_a_command(
        self,
        pick: int,
        outcome: Outcome,
        keep_transient: bool,
        echo_attempt: bool,
    ) -> None:
        busy = [p for p in PARTICIPANTS if self.queues[p]]
        self.handle(busy[pick % len(busy)], outcome, keep_transient=keep_transient, echo_attempt=echo_attempt)

    @precondition(lambda self: self.channel)
    @rule(index=st.integers(min_value=0, max_value=10))
    def orchestrator_receives_a_reply(self, index: int) -> None:
        """Any reply in flight, not necessarily the oldest: the channel reorders."""
        self.receive(self.channel.pop(index % len(self.channel)))

    @precondition(lambda self: self.channel)
    @rule(index=st.integers(min_value=0, max_value=10))
    def a_reply_is_lost(self, index: int) -> None:
        self.channel.pop(index % len(self.channel))

    @precondition(lambda self: self.delivered)
    @rule(index=st.integers(min_value=0, max_value=50))
    def a_reply_is_delivered_again(self, index: int) -> None:
        duplicate = self.delivered[index % len(self.delivered)]
        before = self.state
        actions = self.receive(duplicate)
        assert actions.ignored, f"a duplicate {duplicate.reply.type_name()} changed the saga"
        assert self.state == before

    @rule(seconds=st.sampled_from([0.05, 0.5, 3.0, 11.0, 301.0]))
    def the_clock_moves_and_the_sweeper_looks(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        before = self.state
        actions = on_timeout(ORDER_FULFILLMENT, before, self.now)
        due = before.deadline_at is not None and self.now >= before.deadline_at
        expired = (
            before.status is SagaStatus.RUNNING and before.expires_at is not None and self.now >= before.expires_at
        )
        assert actions.ignored == (not before.status.is_live or not (due or expired))
        self.record(actions, include_current=True)

    @precondition(lambda self: self.state.status.is_live)
    @rule()
    def the_sweeper_fires_at_the_deadline(self) -> None:
        assert self.state.deadline_at is not None
        self.now = max(self.now, self.state.deadline_at)
        actions = on_timeout(ORDER_FULFILLMENT, self.state, self.now)
        assert not actions.ignored
        self.record(actions, include_current=True)

    @rule()
    def an_operator_cancels(self) -> None:
        before = self.state
        actions = cancel(ORDER_FULFILLMENT, before, self.now, "operator")
        assert actions.ignored == (before.status is not SagaStatus.RUNNING)
        self.record(actions, include_current=True)
        if not actions.ignored:
            assert self.state.status in {SagaStatus.COMPENSATING, SagaStatus.COMPENSATED}

    @precondition(lambda self: self.state.status is SagaStatus.FAILED)
    @rule()
    def an_operator_resumes(self) -> None:
        epoch = self.state.epoch
        actions = resume(ORDER_FULFILLMENT, self.state, self.now)
        self.record(actions, include_current=True)
        assert self.state.status is SagaStatus.COMPENSATING
        assert self.state.epoch == epoch + 1

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def a_live_saga_waits_for_something(self) -> None:
        if self.state.status.is_live:
            assert self.state.step is not None
            assert self.state.pending_command_id is not None
            assert self.state.deadline_at is not None
            assert self.state.waiting in {"reply", "retry"}

    @invariant()
    def running_means_every_earlier_step_succeeded(self) -> None:
        if self.state.status is SagaStatus.RUNNING:
            assert self.undo_expected is None
            assert self.state.step == self.forward_sent[-1]
            assert list(self.state.completed_steps) == self.forward_sent[:-1]

    @invariant()
    def compensations_mirror_completed_steps_in_reverse(self) -> None:
        if self.undo_expected is None:
            assert self.undo_sent == []
            return
        assert self.undo_sent == self.undo_expected[: len(self.undo_sent)]
        if self.state.status is SagaStatus.COMPENSATED:
            assert self.undo_sent == self.undo_expected

    @invariant()
    def terminal_states_are_consistent_with_the_participants(self) -> None:
        done = [step for step, direction in self.applied if direction == "do"]
        if self.state.status is SagaStatus.COMPLETED:
            assert tuple(done) == STEPS
            assert self.state.completed_steps == STEPS
            assert all(direction == "do" for _, direction in self.applied)
        if self.state.status is SagaStatus.COMPENSATED:
            for step in set(done) & COMPENSABLE:  # every applied effect was undone after it was applied
                applied_at = self.applied.index((step, "do"))
                assert (step, "undo") in self.applied[applied_at + 1 :], f"{step} was applied and never undone"

    def teardown(self) -> None:
        """From wherever the run stopped, participants that only succeed and a sweeper that keeps firing
        bring the saga to an end: completed or compensated (after an operator's resume if it failed)."""
        event(f"status when the rules stopped: {self.state.status}")
        self.channel.clear()  # whatever was in flight is lost
        for _ in range(DRIVE_LIMIT):
            if self.state.status in {SagaStatus.COMPLETED, SagaStatus.COMPENSATED}:
                break
            if self.state.status is SagaStatus.FAILED:
                self.an_operator_resumes()
            elif busy := [p for p in PARTICIPANTS if self.queues[p]]:
                self.handle(busy[0], "ok", keep_transient=False, echo_attempt=True)
            elif self.channel:
                self.receive(self.channel.pop(0))
            else:
                self.the_sweeper_fires_at_the_deadline()
            self.compensations_mirror_completed_steps_in_reverse()
        event(f"status after the drive: {self.state.status}")
        assert self.state.status in {SagaStatus.COMPLETED, SagaStatus.COMPENSATED}, (
            f"no terminal state after {DRIVE_LIMIT} moves: {self.state}"
        )
        self.compensations_mirror_completed_steps_in_reverse()
        self.terminal_states_are_consistent_with_the_participants()


OrderSagaUnderChaos.TestCase.settings = settings(
    max_examples=500,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderSagaUnderChaos = OrderSagaUnderChaos.TestCase
