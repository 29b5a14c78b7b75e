"""Given/expect tests of the pure engine's transitions on the order saga (and a small guarded saga)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contracts import (
    ApproveOrder,
    CancelOrder,
    ChargePayment,
    CommandFailed,
    CreateOrder,
    FailureReply,
    InventoryReleased,
    InventoryReserved,
    LineItem,
    OrderApproved,
    OrderCancelled,
    OrderCreated,
    PaymentCharged,
    PaymentDeclined,
    PlaceOrder,
    RefundPayment,
    ReleaseInventory,
    Reply,
    ReserveInventory,
    SagaCompensated,
    SagaCompensationStarted,
    SagaCompleted,
    SagaFailed,
    SagaStarted,
    ScheduleShipment,
)
from orchestrator.definition import (
    Compensation,
    HistoryEntry,
    RetryPolicy,
    SagaContext,
    SagaDefinition,
    SagaStatus,
    UnexpectedReply,
    cancel,
    on_timeout,
    resume,
    saga,
    start,
)
from orchestrator.sagas import ORDER_FULFILLMENT
from orchestrator.sagas.order_fulfillment import PAYMENT_RETRY
from tests.support.order_replies import ORDER_ID, SUCCESS, UNDONE
from tests.support.saga_run import (
    PLACE_ORDER,
    SAGA_ID,
    T0,
    Saga,
    assert_ignored,
    at_step,
    begin,
    history_types,
    refusal,
)

STEP_TIMEOUT = ORDER_FULFILLMENT.steps[0].timeout  # every order step uses the default
STEPS = ("create_order", "reserve_inventory", "charge_payment", "schedule_shipment", "approve_order")

# --- start and the happy path ----------------------------------------------------------------


def test_start_sends_create_order_to_the_order_participant() -> None:
    actions = start(ORDER_FULFILLMENT, SAGA_ID, PLACE_ORDER, T0)

    (sent,) = actions.commands
    assert sent.participant == "order"
    assert sent.step == "create_order"
    assert sent.command == CreateOrder(order_id=ORDER_ID, customer_id="c-1", amount_cents=1000)
    assert sent.attempt == 1
    assert not sent.compensation
    state = actions.state
    assert state.status is SagaStatus.RUNNING
    assert state.step == "create_order"
    assert state.waiting == "reply"
    assert state.pending_command_id == sent.message_id
    assert state.deadline_at == T0 + STEP_TIMEOUT
    assert state.expires_at == T0 + timedelta(minutes=5)
    assert state.data["input"]["order_id"] == ORDER_ID
    assert actions.events == (SagaStarted(saga_id=SAGA_ID, saga_type="order_fulfillment"),)
    assert history_types(actions) == ["started", "command_sent"]
    assert not actions.ignored


def test_message_ids_are_stable_per_saga_step_and_direction() -> None:
    first = start(ORDER_FULFILLMENT, SAGA_ID, PLACE_ORDER, T0).commands[0]
    again = start(ORDER_FULFILLMENT, SAGA_ID, PLACE_ORDER, T0 + timedelta(hours=1)).commands[0]
    other = start(ORDER_FULFILLMENT, "saga-2", PLACE_ORDER, T0).commands[0]
    assert first.message_id == again.message_id
    assert first.message_id != other.message_id


EXPECTED_NEXT: list[tuple[str, str, type[Any], str]] = [
    ("create_order", "reserve_inventory", ReserveInventory, "inventory"),
    ("reserve_inventory", "charge_payment", ChargePayment, "payment"),
    ("charge_payment", "schedule_shipment", ScheduleShipment, "shipment"),
    ("schedule_shipment", "approve_order", ApproveOrder, "order"),
]


@pytest.mark.parametrize(("step", "next_step", "command", "participant"), EXPECTED_NEXT)
def test_success_of_a_step_sends_the_next_step(step: str, next_step: str, command: type[Any], participant: str) -> None:
    run = at_step(step)
    run.now = T0 + timedelta(seconds=3)
    previous_id = run.state.pending_command_id

    actions = run.answer(SUCCESS[step])

    (sent,) = actions.commands
    assert isinstance(sent.command, command)
    assert sent.participant == participant
    assert sent.step == next_step
    assert sent.attempt == 1
    assert sent.message_id != previous_id
    assert actions.state.step == next_step
    assert actions.state.completed_steps == STEPS[: STEPS.index(step) + 1]
    assert actions.state.pending_command_id == sent.message_id
    assert actions.state.deadline_at == run.now + STEP_TIMEOUT
    assert actions.state.data["results"][step] == SUCCESS[step].model_dump(mode="json")
    assert history_types(actions) == ["reply_received", "step_completed", "command_sent"]
    assert actions.events == ()


def test_the_last_success_completes_the_saga() -> None:
    run = at_step("approve_order")
    actions = run.answer(OrderApproved(order_id=ORDER_ID))

    assert actions.commands == ()
    assert actions.events == (SagaCompleted(saga_id=SAGA_ID, saga_type="order_fulfillment"),)
    state = actions.state
    assert state.status is SagaStatus.COMPLETED
    assert state.status.is_terminal
    assert state.completed_steps == STEPS
    assert (state.step, state.waiting, state.pending_command_id, state.deadline_at) == (None, None, None, None)
    assert history_types(actions)[-1] == "completed"
    assert [c.step for c in run.commands] == list(STEPS)
    assert not any(c.compensation for c in run.commands)


# --- non-retryable failures compensate in reverse ------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "undo"),
    [
        ("create_order", []),
        ("reserve_inventory", ["CancelOrder"]),
        ("charge_payment", ["ReleaseInventory", "CancelOrder"]),
        ("schedule_shipment", ["RefundPayment", "ReleaseInventory", "CancelOrder"]),
        ("approve_order", ["CancelShipment", "RefundPayment", "ReleaseInventory", "CancelOrder"]),
    ],
)
def test_a_non_retryable_failure_compensates_completed_steps_in_reverse(failing: str, undo: list[str]) -> None:
    run = at_step(failing)
    before = len(run.commands)

    actions = run.answer(refusal(failing, reason="nope"))

    reason = f"{failing}: nope"
    assert (
        SagaCompensationStarted(
            saga_id=SAGA_ID,
            saga_type="order_fulfillment",
            failed_step=failing,
            reason=reason,
        )
        in actions.events
    )
    assert "step_failed" in history_types(actions)
    assert run.undo_all() == undo
    compensations = run.commands[before:]
    assert all(c.compensation for c in compensations)
    assert [c.participant for c in compensations] == [ORDER_FULFILLMENT.step(c.step).participant for c in compensations]
    assert run.state.status is SagaStatus.COMPENSATED
    assert run.state.failure_reason == reason
    assert run.events[-1] == SagaCompensated(saga_id=SAGA_ID, saga_type="order_fulfillment", reason=reason)


def test_compensation_commands_carry_the_saga_input() -> None:
    run = at_step("schedule_shipment")
    run.answer(refusal("schedule_shipment"))
    run.undo_all()
    sent = [c.command for c in run.commands if c.compensation]
    assert sent == [
        RefundPayment(order_id=ORDER_ID),
        ReleaseInventory(order_id=ORDER_ID),
        CancelOrder(order_id=ORDER_ID),
    ]
    assert [c.step for c in run.commands if c.compensation] == ["charge_payment", "reserve_inventory", "create_order"]
    assert len({c.message_id for c in run.commands}) == len(run.commands)


# --- retryable failures: backoff through deadlines ----------------------------------------------


def test_a_retryable_failure_schedules_a_retry_after_the_backoff() -> None:
    run = at_step("charge_payment")
    run.now = T0 + timedelta(seconds=1)
    message_id = run.state.pending_command_id

    actions = run.answer(refusal("charge_payment", retryable=True, reason="gateway glitch", error_type="transient"))

    assert actions.commands == ()
    assert actions.events == ()
    assert actions.state.status is SagaStatus.RUNNING
    assert actions.state.waiting == "retry"
    assert actions.state.attempt == 1
    assert actions.state.deadline_at == run.now + PAYMENT_RETRY.initial_interval
    assert actions.state.pending_command_id == message_id
    assert history_types(actions) == ["reply_received", "retry_scheduled"]


def test_the_retry_resends_the_same_message_id_with_the_next_attempt() -> None:
    run = at_step("charge_payment")
    message_id = run.state.pending_command_id
    run.answer(refusal("charge_payment", retryable=True))
    deadline = run.state.deadline_at
    assert deadline is not None

    early = on_timeout(ORDER_FULFILLMENT, run.state, deadline - timedelta(milliseconds=1))
    assert_ignored(early, run.state)

    actions = run.timeout()

    (sent,) = actions.commands
    assert sent.message_id == message_id
    assert sent.attempt == 2
    assert sent.command == ChargePayment(order_id=ORDER_ID, customer_id="c-1", amount_cents=1000)
    assert actions.state.waiting == "reply"
    assert actions.state.attempt == 2
    assert actions.state.deadline_at == deadline + STEP_TIMEOUT
    assert history_types(actions) == ["retrying", "command_sent"]


def test_retry_delays_grow_by_the_backoff_coefficient_up_to_the_cap() -> None:
    run = at_step("charge_payment")
    delays: list[timedelta] = []
    for _ in range(PAYMENT_RETRY.maximum_attempts - 1):
        run.answer(refusal("charge_payment", retryable=True))
        assert run.state.deadline_at is not None
        delays.append(run.state.deadline_at - run.now)
        run.timeout()
    assert delays == [timedelta(milliseconds=ms) for ms in (100, 200, 400, 800, 1600)]
    assert RetryPolicy(maximum_interval=timedelta(milliseconds=300)).delay_after(3) == timedelta(milliseconds=300)


def test_exhausted_retries_compensate_without_the_failed_step() -> None:
    run = at_step("charge_payment")
    for _ in range(PAYMENT_RETRY.maximum_attempts - 1):
        run.answer(refusal("charge_payment", retryable=True))
        run.timeout()
    assert run.state.attempt == PAYMENT_RETRY.maximum_attempts

    actions = run.answer(refusal("charge_payment", retryable=True, reason="gateway down"))

    assert "step_failed" in history_types(actions)
    assert actions.state.status is SagaStatus.COMPENSATING
    assert actions.state.to_compensate == ("reserve_inventory", "create_order")
    assert run.undo_all() == ["ReleaseInventory", "CancelOrder"]
    assert run.state.status is SagaStatus.COMPENSATED
    assert run.state.failure_reason == "charge_payment: gateway down"


# --- timeouts --------------------------------------------------------------------------------


def test_a_timeout_before_the_deadline_is_ignored() -> None:
    run = at_step("create_order")
    assert_ignored(on_timeout(ORDER_FULFILLMENT, run.state, T0 + STEP_TIMEOUT - timedelta(microseconds=1)), run.state)


def test_a_timeout_at_the_deadline_resends_the_same_message_id() -> None:
    run = at_step("reserve_inventory")
    message_id = run.state.pending_command_id

    actions = run.timeout()

    (sent,) = actions.commands
    assert sent.message_id == message_id
    assert sent.attempt == 2
    assert isinstance(sent.command, ReserveInventory)
    assert actions.state.attempt == 2
    assert actions.state.waiting == "reply"
    assert actions.state.deadline_at == run.now + STEP_TIMEOUT
    assert history_types(actions) == ["timed_out", "command_sent"]


def test_timeouts_used_up_compensate_including_the_in_doubt_step() -> None:
    run = at_step("charge_payment")
    message_id = run.state.pending_command_id
    for attempt in range(2, PAYMENT_RETRY.maximum_attempts + 1):
        resent = run.timeout().commands
        assert [(c.message_id, c.attempt) for c in resent] == [(message_id, attempt)]

    actions = run.timeout()

    reason = f"charge_payment: no reply after {PAYMENT_RETRY.maximum_attempts} attempts"
    assert actions.state.status is SagaStatus.COMPENSATING
    assert actions.state.to_compensate == ("charge_payment", "reserve_inventory", "create_order")
    assert (
        SagaCompensationStarted(
            saga_id=SAGA_ID,
            saga_type="order_fulfillment",
            failed_step="charge_payment",
            reason=reason,
        )
        in actions.events
    )
    assert run.undo_all() == ["RefundPayment", "ReleaseInventory", "CancelOrder"]
    assert run.state.status is SagaStatus.COMPENSATED


def test_a_late_forward_reply_during_compensation_is_ignored() -> None:
    run = at_step("charge_payment")
    forward_id = run.state.pending_command_id
    while run.state.status is SagaStatus.RUNNING:
        run.timeout()
    assert run.state.step == "charge_payment"  # compensating the in-doubt step first
    state = run.state

    assert_ignored(run.deliver(SUCCESS["charge_payment"], forward_id, attempt=1), state)


def test_the_saga_time_to_live_expiry_compensates_including_the_current_step() -> None:
    run = at_step("schedule_shipment")
    expires_at = run.state.expires_at
    assert expires_at == T0 + timedelta(minutes=5)
    # Far past the step's deadline but before the time-to-live: an ordinary step timeout.
    assert history_types(on_timeout(ORDER_FULFILLMENT, run.state, expires_at - timedelta(seconds=1)))[0] == "timed_out"

    actions = run.timeout(at=expires_at)

    assert history_types(actions)[:2] == ["expired", "compensation_started"]
    assert actions.state.failure_reason == "saga exceeded its time-to-live"
    assert run.undo_all() == ["CancelShipment", "RefundPayment", "ReleaseInventory", "CancelOrder"]
    assert run.events[-1] == SagaCompensated(
        saga_id=SAGA_ID,
        saga_type="order_fulfillment",
        reason="saga exceeded its time-to-live",
    )


def test_the_time_to_live_does_not_interrupt_a_compensation() -> None:
    run = at_step("charge_payment")
    run.answer(refusal("charge_payment"))
    state = run.state
    assert state.expires_at is not None

    actions = on_timeout(ORDER_FULFILLMENT, state, state.expires_at + timedelta(seconds=1))

    assert history_types(actions) == ["timed_out", "compensation_sent"]  # the compensation is resent, not abandoned
    assert actions.state.status is SagaStatus.COMPENSATING
    assert actions.state.step == "reserve_inventory"
    assert actions.state.attempt == 2


# --- failed compensations and resume ----------------------------------------------------------


def failed_saga() -> Saga:
    """Charge declined, then releasing the inventory fails for good."""
    run = at_step("charge_payment")
    run.answer(refusal("charge_payment"))
    assert run.state.step == "reserve_inventory"
    run.answer(CommandFailed(reason="inventory db corrupt", retryable=False))
    return run


def test_a_non_retryable_compensation_failure_moves_the_saga_to_failed() -> None:
    run = failed_saga()
    reason = "compensation of reserve_inventory: inventory db corrupt"
    assert run.state.status is SagaStatus.FAILED
    assert run.state.status.is_terminal
    assert not run.state.status.is_live
    assert run.state.failure_reason == reason
    assert run.state.to_compensate == ("reserve_inventory", "create_order")
    assert (run.state.waiting, run.state.deadline_at) == (None, None)
    assert run.events[-1] == SagaFailed(saga_id=SAGA_ID, saga_type="order_fulfillment", reason=reason)
    assert run.history[-1].type == "failed"
    assert_ignored(on_timeout(ORDER_FULFILLMENT, run.state, run.now + timedelta(days=1)), run.state)


def test_compensation_timeouts_used_up_move_the_saga_to_failed() -> None:
    run = at_step("reserve_inventory")
    run.answer(refusal("reserve_inventory"))
    compensation = ORDER_FULFILLMENT.step("create_order").compensation
    assert compensation is not None
    for _ in range(compensation.retry.maximum_attempts - 1):
        assert run.timeout().commands[0].command == CancelOrder(order_id=ORDER_ID)

    actions = run.timeout()

    assert actions.state.status is SagaStatus.FAILED
    assert actions.commands == ()
    reason = f"compensation of create_order timed out {compensation.retry.maximum_attempts} times"
    assert actions.events == (SagaFailed(saga_id=SAGA_ID, saga_type="order_fulfillment", reason=reason),)


def test_resume_resends_the_failed_compensation_with_a_new_message_id_and_finishes() -> None:
    run = failed_saga()
    old_id = run.state.pending_command_id
    run.now += timedelta(hours=1)

    actions = run.apply(resume(ORDER_FULFILLMENT, run.state, run.now))

    (sent,) = actions.commands
    assert sent.command == ReleaseInventory(order_id=ORDER_ID)
    assert sent.compensation
    assert sent.attempt == 1
    assert sent.message_id != old_id
    assert actions.state.epoch == 1
    assert actions.state.status is SagaStatus.COMPENSATING
    assert actions.state.deadline_at == run.now + STEP_TIMEOUT
    assert history_types(actions) == ["resumed", "compensation_sent"]
    # The old epoch's reply no longer answers anything.
    assert_ignored(run.deliver(UNDONE["reserve_inventory"], old_id, attempt=1), run.state)

    assert run.undo_all() == ["ReleaseInventory", "CancelOrder"]
    assert run.state.status is SagaStatus.COMPENSATED
    assert isinstance(run.events[-1], SagaCompensated)


@pytest.mark.parametrize(
    ("step", "last_reply", "end"),
    [
        ("create_order", refusal("create_order"), SagaStatus.COMPENSATED),
        ("approve_order", SUCCESS["approve_order"], SagaStatus.COMPLETED),
    ],
)
def test_resume_ignores_a_saga_that_did_not_fail(step: str, last_reply: Reply, end: SagaStatus) -> None:
    run = at_step(step)
    assert_ignored(resume(ORDER_FULFILLMENT, run.state, run.now), run.state)
    run.answer(last_reply)
    assert run.state.status is end
    assert_ignored(resume(ORDER_FULFILLMENT, run.state, run.now), run.state)


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_compensates_including_the_step_in_flight() -> None:
    run = at_step("charge_payment")

    actions = run.apply(cancel(ORDER_FULFILLMENT, run.state, run.now, "customer changed their mind"))

    assert history_types(actions)[:2] == ["cancel_requested", "compensation_started"]
    assert (
        SagaCompensationStarted(
            saga_id=SAGA_ID,
            saga_type="order_fulfillment",
            failed_step="charge_payment",
            reason="cancelled: customer changed their mind",
        )
        in actions.events
    )
    assert run.undo_all() == ["RefundPayment", "ReleaseInventory", "CancelOrder"]
    assert run.state.status is SagaStatus.COMPENSATED


def test_cancel_during_a_retry_wait_compensates_the_retried_step_too() -> None:
    run = at_step("charge_payment")
    run.answer(refusal("charge_payment", retryable=True))
    run.apply(cancel(ORDER_FULFILLMENT, run.state, run.now, "ops"))
    assert run.undo_all() == ["RefundPayment", "ReleaseInventory", "CancelOrder"]


def test_cancel_is_ignored_unless_the_saga_is_running() -> None:
    run = at_step("reserve_inventory")
    run.answer(refusal("reserve_inventory"))
    assert run.state.status is SagaStatus.COMPENSATING
    assert_ignored(cancel(ORDER_FULFILLMENT, run.state, run.now, "again"), run.state)
    run.undo_all()
    assert_ignored(cancel(ORDER_FULFILLMENT, run.state, run.now, "too late"), run.state)


# --- stale and unexpected replies ---------------------------------------------------------------


def test_a_reply_with_another_causation_id_is_ignored() -> None:
    run = at_step("charge_payment")
    for causation in ("not-the-pending-command", None):
        assert_ignored(run.deliver(SUCCESS["charge_payment"], causation, attempt=1), run.state)


def test_a_duplicate_of_the_previous_steps_success_is_ignored() -> None:
    run = at_step("reserve_inventory")
    previous = run.commands[-1].message_id
    run.answer(SUCCESS["reserve_inventory"])
    assert_ignored(run.deliver(SUCCESS["reserve_inventory"], previous, attempt=1), run.state)


def test_an_earlier_attempts_transient_failure_is_ignored() -> None:
    run = at_step("charge_payment")
    run.timeout()
    assert run.state.attempt == 2
    stale = refusal("charge_payment", retryable=True)
    assert_ignored(run.deliver(stale, run.state.pending_command_id, attempt=1), run.state)


def test_an_earlier_attempts_definitive_failure_still_counts() -> None:
    """The participant stored a refusal for the message id: every later attempt would get the same answer."""
    run = at_step("charge_payment")
    run.timeout()
    actions = run.deliver(refusal("charge_payment"), run.state.pending_command_id, attempt=1)
    assert not actions.ignored
    assert actions.state.status is SagaStatus.COMPENSATING
    assert [c.command.type_name() for c in actions.commands] == ["ReleaseInventory"]


def test_a_duplicate_failure_while_waiting_to_retry_is_ignored() -> None:
    run = at_step("charge_payment")
    run.answer(refusal("charge_payment", retryable=True))
    assert run.state.waiting == "retry"
    duplicate = run.deliver(refusal("charge_payment", retryable=True), run.state.pending_command_id, run.state.attempt)
    assert_ignored(duplicate, run.state)


def test_an_earlier_attempts_success_still_counts() -> None:
    """A success of attempt 1 after attempt 2 was sent: same message id, so the work was done once."""
    run = at_step("charge_payment")
    run.timeout()
    actions = run.deliver(SUCCESS["charge_payment"], run.state.pending_command_id, attempt=1)
    assert not actions.ignored
    assert actions.state.step == "schedule_shipment"


def test_a_reply_after_the_saga_ended_is_ignored() -> None:
    run = at_step("approve_order")
    last_id = run.state.pending_command_id
    run.answer(SUCCESS["approve_order"])
    assert run.state.status is SagaStatus.COMPLETED
    for reply in (SUCCESS["approve_order"], refusal("approve_order")):
        assert_ignored(run.deliver(reply, last_id, attempt=1), run.state)
    assert_ignored(on_timeout(ORDER_FULFILLMENT, run.state, run.now + timedelta(days=1)), run.state)


def test_a_reply_type_the_step_does_not_declare_is_rejected() -> None:
    run = at_step("create_order")
    with pytest.raises(UnexpectedReply, match="step 'create_order' does not declare reply type 'InventoryReserved'"):
        run.answer(InventoryReserved(order_id=ORDER_ID))


def test_a_reply_type_the_compensation_does_not_declare_is_rejected() -> None:
    run = at_step("charge_payment")
    run.answer(refusal("charge_payment"))
    assert run.state.step == "reserve_inventory"
    with pytest.raises(UnexpectedReply, match="compensation of 'reserve_inventory' does not declare reply type"):
        run.answer(InventoryReserved(order_id=ORDER_ID))


def test_a_forward_success_reply_is_not_a_compensation_reply() -> None:
    run = at_step("create_order")
    with pytest.raises(UnexpectedReply):
        run.answer(OrderCancelled(order_id=ORDER_ID))


# --- guards and non-retryable error types on a small custom saga --------------------------------

Ctx = SagaContext[PlaceOrder]


def _several_items(c: Ctx) -> bool:
    return len(c.input.items) > 1


def guarded_saga(*, payment_retry: RetryPolicy = PAYMENT_RETRY) -> SagaDefinition[PlaceOrder]:
    """create_order → reserve_inventory (only for several items) → charge_payment (last)."""
    return (
        saga("guarded_order", start=PlaceOrder)
        .step(
            "create_order",
            participant="order",
            command=CreateOrder,
            build=lambda c: CreateOrder(order_id=c.input.order_id, customer_id="c-1", amount_cents=1),
            replies=(OrderCreated,),
            compensation=Compensation(
                command=CancelOrder,
                build=lambda c: CancelOrder(order_id=c.input.order_id),
                replies=(OrderCancelled,),
            ),
        )
        .step(
            "reserve_inventory",
            participant="inventory",
            command=ReserveInventory,
            build=lambda c: ReserveInventory(order_id=c.input.order_id, items=c.input.items),
            replies=(InventoryReserved,),
            compensation=Compensation(
                command=ReleaseInventory,
                build=lambda c: ReleaseInventory(order_id=c.input.order_id),
                replies=(InventoryReleased,),
            ),
            when=_several_items,
            when_label="several items",
        )
        .step(
            "charge_payment",
            participant="payment",
            command=ChargePayment,
            build=lambda c: ChargePayment(order_id=c.input.order_id, customer_id="c-1", amount_cents=1),
            replies=(PaymentCharged,),
            failures=(PaymentDeclined,),
            retry=payment_retry,
        )
        .build()
    )


ONE_ITEM = PLACE_ORDER
TWO_ITEMS = PLACE_ORDER.model_copy(
    update={"items": (*PLACE_ORDER.items, LineItem(sku="b", quantity=1, unit_price_cents=1))}
)


def test_a_guarded_step_is_skipped_when_the_guard_is_false() -> None:
    run = begin(guarded_saga(), ONE_ITEM)
    actions = run.answer(SUCCESS["create_order"])

    assert HistoryEntry(type="step_skipped", step="reserve_inventory", payload={"guard": "several items"}) in (
        actions.history
    )
    (sent,) = actions.commands
    assert sent.step == "charge_payment"
    assert isinstance(sent.command, ChargePayment)
    assert [c.step for c in run.commands] == ["create_order", "charge_payment"]


def test_a_guarded_step_runs_when_the_guard_is_true() -> None:
    run = begin(guarded_saga(), TWO_ITEMS)
    actions = run.answer(SUCCESS["create_order"])

    assert "step_skipped" not in history_types(actions)
    (sent,) = actions.commands
    assert sent.step == "reserve_inventory"
    assert sent.command == ReserveInventory(order_id=ORDER_ID, items=TWO_ITEMS.items)
    run.answer(SUCCESS["reserve_inventory"])
    run.answer(SUCCESS["charge_payment"])
    assert run.state.status is SagaStatus.COMPLETED
    assert run.state.completed_steps == ("create_order", "reserve_inventory", "charge_payment")


def test_a_skipped_step_is_not_compensated() -> None:
    run = begin(guarded_saga(), ONE_ITEM)
    run.answer(SUCCESS["create_order"])
    run.answer(refusal("charge_payment"))
    assert run.undo_all() == ["CancelOrder"]
    assert run.state.status is SagaStatus.COMPENSATED


def test_a_first_step_guard_is_evaluated_at_start() -> None:
    definition = (
        saga("tiny_saga", start=PlaceOrder)
        .step(
            "create_order",
            participant="order",
            command=CreateOrder,
            build=lambda c: CreateOrder(order_id=c.input.order_id, customer_id="c-1", amount_cents=1),
            replies=(OrderCreated,),
            when=_several_items,
            when_label="several items",
        )
        .build()
    )
    skipped = start(definition, SAGA_ID, ONE_ITEM, T0)
    assert skipped.commands == ()
    assert skipped.state.status is SagaStatus.COMPLETED
    assert history_types(skipped) == ["started", "step_skipped", "completed"]
    assert start(definition, SAGA_ID, TWO_ITEMS, T0).commands[0].step == "create_order"


def test_a_non_retryable_error_type_is_not_retried_even_if_marked_retryable() -> None:
    policy = RetryPolicy(maximum_attempts=5, non_retryable_error_types=frozenset({"card_stolen"}))
    run = begin(guarded_saga(payment_retry=policy), ONE_ITEM)
    run.answer(SUCCESS["create_order"])

    failure = refusal("charge_payment", retryable=True, error_type="card_stolen")
    assert isinstance(failure, FailureReply)
    actions = run.answer(failure)

    assert actions.state.status is SagaStatus.COMPENSATING
    assert "retry_scheduled" not in history_types(actions)
    assert run.undo_all() == ["CancelOrder"]
