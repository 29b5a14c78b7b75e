"""Resolving ``SAGALINE_SAGA_DEFINITIONS`` (``module:attribute``) to a definition registry."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from orchestrator.definition import DefinitionRegistry, SagaDefinition, UnknownDefinition

DEFAULT_DEFINITIONS = "orchestrator.sagas:REGISTRY"


def load_registry(spec: str = DEFAULT_DEFINITIONS) -> DefinitionRegistry:
    """The attribute may be a :class:`DefinitionRegistry` or an iterable of definitions (any versions)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UnknownDefinition(f"SAGALINE_SAGA_DEFINITIONS={spec!r}: expected 'package.module:ATTRIBUTE'")
    try:
        found: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownDefinition(f"SAGALINE_SAGA_DEFINITIONS={spec!r} cannot be loaded: {exc}") from exc
    if isinstance(found, DefinitionRegistry):
        return found
    if isinstance(found, Iterable) and all(isinstance(d, SagaDefinition) for d in found):
        return DefinitionRegistry(found)
    raise UnknownDefinition(f"SAGALINE_SAGA_DEFINITIONS={spec!r} is neither a registry nor a list of definitions")
