"""The saga definitions this orchestrator runs, by name and by start-command type."""

from __future__ import annotations

from typing import Any

from orchestrator.definition import SagaDefinition
from orchestrator.sagas.order_fulfillment import ORDER_FULFILLMENT

DEFINITIONS: dict[str, SagaDefinition[Any]] = {ORDER_FULFILLMENT.name: ORDER_FULFILLMENT}
BY_START_TYPE: dict[str, SagaDefinition[Any]] = {d.start.type_name(): d for d in DEFINITIONS.values()}

__all__ = ["BY_START_TYPE", "DEFINITIONS", "ORDER_FULFILLMENT"]
