"""``verify``: rebuild a saga from its history alone and compare with the stored state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.definition import DefinitionRegistry, UnknownDefinition
from orchestrator.persistence import snapshot, state_from_row
from orchestrator.runtime import RebuildError, rebuild


@dataclass(frozen=True, kw_only=True)
class Verification:
    saga_id: str
    events: int
    matches: bool
    differences: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {"stored": …, "rebuilt": …}
    error: str | None = None


def verify(registry: DefinitionRegistry, row: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> Verification:
    """Replays the recorded inputs through the engine of the saga's own definition version."""
    saga_id = row["id"]
    stored = snapshot(state_from_row(row))
    try:
        definition = registry.get(row["saga_type"], row["definition_version"])
        rebuilt = rebuild(definition, saga_id, events)
    except (RebuildError, UnknownDefinition) as exc:
        return Verification(saga_id=saga_id, events=len(events), matches=False, error=str(exc))
    differences = {
        key: {"stored": stored[key], "rebuilt": rebuilt.get(key)} for key in stored if stored[key] != rebuilt.get(key)
    }
    return Verification(saga_id=saga_id, events=len(events), matches=not differences, differences=differences)
