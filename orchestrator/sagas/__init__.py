"""The saga definitions this orchestrator runs: every deployed version, by name.

A deployment chooses its definitions with ``SAGALINE_SAGA_DEFINITIONS`` (``module:attribute``, default
``orchestrator.sagas:REGISTRY``); :func:`load_registry` resolves it."""

from __future__ import annotations

from orchestrator.definition import DefinitionRegistry
from orchestrator.sagas._loading import DEFAULT_DEFINITIONS, load_registry
from orchestrator.sagas.order_fulfillment import ORDER_FULFILLMENT

REGISTRY = DefinitionRegistry([ORDER_FULFILLMENT])

__all__ = ["DEFAULT_DEFINITIONS", "ORDER_FULFILLMENT", "REGISTRY", "load_registry"]
