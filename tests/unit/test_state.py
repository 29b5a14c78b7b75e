"""The saga state's two hot helpers keep the meaning of what they replaced: command ids are the uuid5 text sent by
every earlier release (a resend after an upgrade must reuse its id), and evolve is dataclasses.replace."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.definition._state import MESSAGE_ID_NAMESPACE, SagaState, SagaStatus, name_based_id

STATE = SagaState(
    saga_id="order-1",
    saga_type="order_fulfillment",
    status=SagaStatus.RUNNING,
    step="reserve_inventory",
    data={"input": {"order_id": "order-1"}},
    completed_steps=("create_order",),
)


@given(st.text())
def test_name_based_ids_are_the_uuid5_text(name: str) -> None:
    assert name_based_id(name) == str(uuid.uuid5(MESSAGE_ID_NAMESPACE, name))


@given(st.text(), st.uuids())
def test_name_based_ids_in_any_namespace_are_the_uuid5_text(name: str, namespace: uuid.UUID) -> None:
    assert name_based_id(name, namespace) == str(uuid.uuid5(namespace, name))


def test_a_command_id_is_stable_per_saga_step_direction_and_epoch() -> None:
    expected = str(uuid.uuid5(MESSAGE_ID_NAMESPACE, "order-1/undo/charge_payment/2"))
    assert dataclasses.replace(STATE, epoch=2).command_id("charge_payment", compensation=True) == expected
    assert STATE.command_id("charge_payment", compensation=True) != STATE.command_id(
        "charge_payment", compensation=False
    )


def test_evolve_is_replace() -> None:
    changes = {"step": "charge_payment", "attempt": 2, "deadline_at": datetime(2026, 12, 1, tzinfo=UTC)}
    evolved = STATE.evolve(**changes)
    assert evolved == dataclasses.replace(STATE, **changes)
    assert (STATE.step, STATE.attempt) == ("reserve_inventory", 1), "the original is left as it was"
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.step = "x"  # type: ignore[misc]


def test_evolve_refuses_a_field_the_state_does_not_have() -> None:
    with pytest.raises(TypeError, match="no field \\['stpe'\\]"):
        STATE.evolve(stpe="typo")
