"""A saga's start command is validated once and reused by its later transitions, never across different input."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import PlaceOrder
from orchestrator.definition import SagaStatus
from orchestrator.definition._dsl import STARTS_KEPT
from orchestrator.sagas import ORDER_FULFILLMENT
from tests.support.order_replies import SUCCESS
from tests.support.saga_run import PLACE_ORDER, SAGA_ID, begin


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    original = PlaceOrder.model_validate

    def counting(raw: Any, **kwargs: Any) -> PlaceOrder:
        seen.append(raw)
        return original(raw, **kwargs)

    monkeypatch.setattr(PlaceOrder, "model_validate", counting)
    return seen


def test_the_input_read_back_from_the_database_is_not_validated_again(validations: list[dict[str, Any]]) -> None:
    definition = ORDER_FULFILLMENT
    raw = PLACE_ORDER.model_dump(mode="json")
    definition.remember_start(SAGA_ID, raw, PLACE_ORDER)
    read_back = PLACE_ORDER.model_dump(mode="json")  # an equal dict, not the same object (as from a row)
    context = definition.context({"input": read_back, "results": {}}, saga_id=SAGA_ID)
    assert context.input is PLACE_ORDER
    assert validations == []


def test_other_input_under_the_same_saga_id_is_validated_and_kept(validations: list[dict[str, Any]]) -> None:
    definition = ORDER_FULFILLMENT
    definition.remember_start(SAGA_ID, PLACE_ORDER.model_dump(mode="json"), PLACE_ORDER)
    restarted = PLACE_ORDER.model_copy(update={"customer_id": "c-2"})  # purged, then started again
    raw = restarted.model_dump(mode="json")
    first = definition.context({"input": raw}, saga_id=SAGA_ID).input
    assert first == restarted
    assert first.customer_id == "c-2"
    again = definition.context({"input": restarted.model_dump(mode="json")}, saga_id=SAGA_ID).input
    assert again is first
    assert len(validations) == 1


def test_without_a_saga_id_every_call_validates(validations: list[dict[str, Any]]) -> None:
    raw = PLACE_ORDER.model_dump(mode="json")
    ORDER_FULFILLMENT.context({"input": raw})
    ORDER_FULFILLMENT.context({"input": raw})
    assert len(validations) == 2


def test_the_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    definition = ORDER_FULFILLMENT
    raw = PLACE_ORDER.model_dump(mode="json")
    for i in range(STARTS_KEPT + 10):
        definition.remember_start(f"bounded-{i}", raw, PLACE_ORDER)
    kept = definition._starts
    assert len(kept) == STARTS_KEPT
    assert "bounded-0" not in kept
    assert f"bounded-{STARTS_KEPT + 9}" in kept


def test_a_saga_run_to_completion_validates_its_input_not_once_more(validations: list[dict[str, Any]]) -> None:
    run = begin()
    run.succeed_until("approve_order")
    run.answer(SUCCESS["approve_order"])
    assert run.state.status is SagaStatus.COMPLETED
    assert validations == []
