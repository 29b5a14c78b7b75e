"""Operator transitions of the pure engine: who and why are recorded, refusals change nothing, and a rebuild
from history replays them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from orchestrator.definition import (
    OperatorVerb,
    SagaStatus,
    cancel,
    compensate,
    refusal,
    resume,
    retry,
)
from orchestrator.persistence import snapshot
from orchestrator.runtime import rebuild
from orchestrator.sagas import ORDER_FULFILLMENT
from tests.support.order_replies import SUCCESS
from tests.support.saga_run import SAGA_ID, Saga, assert_ignored, at_step, begin, history_types


def completed() -> Saga:
    run = begin()
    while run.state.status is SagaStatus.RUNNING:
        assert run.state.step is not None
        run.answer(SUCCESS[run.state.step])
    assert run.state.status is SagaStatus.COMPLETED
    return run


def test_retry_resends_the_pending_command_now_with_the_same_id_and_the_next_attempt() -> None:
    run = at_step("charge_payment")
    pending = run.state.pending_command_id
    run.now += timedelta(seconds=3)
    actions = run.apply(retry(ORDER_FULFILLMENT, run.state, run.now, "gateway back", actor="ops-kim"))
    assert history_types(actions) == ["retry_requested", "command_sent"]
    request = actions.history[0]
    assert dict(request.payload) == {"reason": "gateway back", "actor": "ops-kim", "attempt": 2}
    (command,) = actions.commands
    assert (command.message_id, command.attempt, command.step) == (pending, 2, "charge_payment")
    assert run.state.deadline_at == run.now + ORDER_FULFILLMENT.step("charge_payment").timeout


def test_retry_during_compensation_resends_the_compensation() -> None:
    run = at_step("charge_payment")
    run.apply(cancel(ORDER_FULFILLMENT, run.state, run.now, "stop"))
    actions = run.apply(retry(ORDER_FULFILLMENT, run.state, run.now, "again"))
    (command,) = actions.commands
    assert command.compensation
    assert command.command.type_name() == "RefundPayment"
    assert command.attempt == 2


def test_compensate_a_completed_saga_undoes_every_compensable_step_in_reverse() -> None:
    run = completed()
    actions = run.apply(compensate(ORDER_FULFILLMENT, run.state, run.now, "chargeback", actor="ops"))
    assert history_types(actions)[:3] == ["compensate_requested", "compensation_started", "compensation_sent"]
    assert actions.history[0].payload["from_status"] == "completed"
    assert run.state.to_compensate == ("schedule_shipment", "charge_payment", "reserve_inventory", "create_order")
    assert run.undo_all() == ["CancelShipment", "RefundPayment", "ReleaseInventory", "CancelOrder"]
    assert run.state.status is SagaStatus.COMPENSATED
    assert run.state.failure_reason == "compensation forced: chargeback"


def test_compensate_a_running_saga_includes_the_step_in_flight() -> None:
    run = at_step("schedule_shipment")
    run.apply(compensate(ORDER_FULFILLMENT, run.state, run.now, "hold"))
    assert run.state.to_compensate == ("schedule_shipment", "charge_payment", "reserve_inventory", "create_order")


def test_cancel_and_resume_record_the_actor() -> None:
    run = at_step("reserve_inventory")
    actions = run.apply(cancel(ORDER_FULFILLMENT, run.state, run.now, "customer", actor="cli:ann@host"))
    assert actions.history[0].payload == {"reason": "customer", "actor": "cli:ann@host"}


STATES: dict[str, Any] = {
    "running": lambda: at_step("charge_payment"),
    "completed": completed,
}


@pytest.mark.parametrize(
    ("verb", "status", "words"),
    [
        (OperatorVerb.CANCEL, "completed", "only a running saga can be cancelled (to undo a completed saga, use"),
        (OperatorVerb.RETRY, "completed", "only a running or compensating saga has a step to retry"),
        (OperatorVerb.RESUME, "running", "only a failed saga can be resumed"),
        (OperatorVerb.RESUME, "completed", "only a failed saga can be resumed"),
    ],
)
def test_a_verb_that_does_not_apply_is_refused_with_what_to_do(verb: OperatorVerb, status: str, words: str) -> None:
    run = STATES[status]()
    message = refusal(verb, run.state)
    assert message is not None
    assert words in message
    assert SAGA_ID in message
    transition = {"cancel": cancel, "retry": retry, "resume": resume, "compensate": compensate}[verb.value]
    assert_ignored(transition(ORDER_FULFILLMENT, run.state, run.now, "x"), run.state)


def test_compensate_is_refused_once_compensated() -> None:
    run = completed()
    run.apply(compensate(ORDER_FULFILLMENT, run.state, run.now, "first"))
    run.undo_all()
    message = refusal(OperatorVerb.COMPENSATE, run.state)
    assert message is not None
    assert "is compensated: only a running or completed saga can be compensated" in message
    assert refusal(OperatorVerb.RETRY, at_step("create_order").state) is None


def test_rebuild_replays_operator_requests() -> None:
    run = begin()
    events = [
        {"seq": i, "type": entry.type, "payload": dict(entry.payload), "at": run.now}
        for i, entry in enumerate(run.history, start=1)
    ]

    def record(actions: Any) -> None:
        run.apply(actions)
        events.extend(
            {"seq": len(events) + 1, "type": entry.type, "payload": dict(entry.payload), "at": run.now}
            for entry in actions.history
        )

    def answer() -> None:
        assert run.state.step is not None
        record(run.deliver(SUCCESS[run.state.step], run.state.pending_command_id, run.state.attempt))

    answer()
    answer()
    record(retry(ORDER_FULFILLMENT, run.state, run.now, "nudge", actor="ops"))
    answer()
    record(compensate(ORDER_FULFILLMENT, run.state, run.now, "hold", actor="ops"))
    assert run.state.status is SagaStatus.COMPENSATING
    assert rebuild(ORDER_FULFILLMENT, SAGA_ID, events) == snapshot(run.state)
