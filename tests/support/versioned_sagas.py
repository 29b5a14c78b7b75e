"""Two versions of the order saga, for the definition-versioning test: v2 ships digitally (no shipment step)."""

from __future__ import annotations

from typing import Any

from contracts import PlaceOrder
from orchestrator.definition import DefinitionRegistry, SagaBuilder, SagaDefinition, Step, saga
from orchestrator.sagas import ORDER_FULFILLMENT


def _with(builder: SagaBuilder[PlaceOrder], step: Step[Any]) -> SagaBuilder[PlaceOrder]:
    return builder.step(
        step.name,
        participant=step.participant,
        command=step.command,
        build=step.build,
        replies=step.replies,
        failures=step.failures,
        compensation=step.compensation,
        retry=step.retry,
        timeout=step.timeout,
        when=step.when,
        when_label=step.when_label,
    )


def _digital() -> SagaDefinition[PlaceOrder]:
    builder = saga(
        ORDER_FULFILLMENT.name,
        start=PlaceOrder,
        version=2,
        time_to_live=ORDER_FULFILLMENT.time_to_live,
        saga_id_of=lambda c: c.saga_id,
    )
    for step in ORDER_FULFILLMENT.steps:
        if step.name != "schedule_shipment":
            builder = _with(builder, step)
    return builder.build()


ORDER_FULFILLMENT_V2 = _digital()
V1_ONLY = DefinitionRegistry([ORDER_FULFILLMENT])
V1_AND_V2 = [ORDER_FULFILLMENT, ORDER_FULFILLMENT_V2]  # a plain list works too
