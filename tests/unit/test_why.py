"""``why`` in plain language, from a saga row, its history and the dead letters, at a given time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.admin import explain, last_error
from orchestrator.sagas import ORDER_FULFILLMENT

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "s-1",
        "saga_type": "order_fulfillment",
        "definition_version": 1,
        "status": "running",
        "step": "charge_payment",
        "attempt": 2,
        "waiting": "reply",
        "deadline_at": NOW + timedelta(seconds=20),
        "expires_at": NOW + timedelta(minutes=4),
        "failure_reason": None,
        "to_compensate": [],
        "updated_at": NOW - timedelta(seconds=10),
    }
    return base | changes


SENT = {
    "type": "command_sent",
    "step": "charge_payment",
    "payload": {"command": "ChargePayment", "attempt": 2},
    "at": NOW - timedelta(seconds=10),
}
TIMED_OUT = {
    "type": "timed_out",
    "step": "charge_payment",
    "payload": {"attempt": 1},
    "at": NOW - timedelta(seconds=10),
}


def test_waiting_for_a_reply_names_the_participant_command_attempts_and_deadline() -> None:
    found = explain(row(), [TIMED_OUT, SENT], now=NOW, definition=ORDER_FULFILLMENT)
    assert found.moving
    assert found.summary == (
        "waiting 10.0 s for the payment service to answer ChargePayment (step charge_payment, attempt 2 of 6)"
    )
    assert "deadline in 20.0 s" in found.details[0]
    assert "then the command is re-sent" in found.details[0]
    assert found.last_error == "charge_payment: no reply to attempt 1 before its deadline"
    assert found.waiting_since == SENT["at"]
    assert "sagaline saga retry s-1" in found.suggestions[0]


def test_a_deadline_long_past_means_the_sweeper_is_not_running() -> None:
    stale = row(deadline_at=NOW - timedelta(minutes=3), updated_at=NOW - timedelta(minutes=4))
    found = explain(stale, [SENT], now=NOW, definition=ORDER_FULFILLMENT)
    assert not found.moving
    assert any("deadline passed 3 min ago and nothing happened" in d for d in found.details)
    assert any("no state change for 4 min" in d for d in found.details)


def test_a_scheduled_retry_and_dead_letters() -> None:
    retrying = row(waiting="retry", deadline_at=NOW + timedelta(seconds=1.5))
    failure = {
        "type": "reply_received",
        "step": "charge_payment",
        "payload": {"reply": "PaymentDeclined", "body": {"reason": "gateway glitch", "retryable": True}},
        "at": NOW,
    }
    letter = {"offset": 7, "reason": "schema-invalid", "source_topic": "saga.replies", "error": "bad field"}
    found = explain(retrying, [SENT, failure], now=NOW, definition=ORDER_FULFILLMENT, dead_letters=[letter])
    assert found.summary == "step charge_payment failed retryably; attempt 3 of 6 is scheduled in 1.5 s"
    assert found.last_error == "PaymentDeclined from charge_payment: gateway glitch"
    assert "1 dead-lettered message(s) concern this saga:" in found.details
    assert "  offset 7: schema-invalid from saga.replies: bad field" in found.details
    assert not found.moving


def test_terminal_states_and_a_missing_definition() -> None:
    failed = row(status="failed", failure_reason="compensation of charge_payment: refund down", to_compensate=["x"])
    found = explain(failed, [], now=NOW, definition=None, dead_letters_error="not checked: broker unreachable")
    assert found.summary.startswith("failed 10.0 s ago: compensation of charge_payment: refund down.")
    assert found.suggestions[0] == "fix the cause, then: sagaline saga resume s-1"
    assert "dead letters not checked: broker unreachable" in found.details
    assert any("order_fulfillment v1 is not deployed" in d for d in found.details)
    done = explain(row(status="completed"), [], now=NOW, definition=ORDER_FULFILLMENT)
    assert (done.moving, done.summary) == (False, "completed 10.0 s ago: nothing to do")
    assert last_error([]) is None
