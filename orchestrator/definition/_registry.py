"""The deployed saga definitions, by name and version: new sagas start on the latest version, running ones
finish on the version they started with."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from orchestrator.definition._dsl import SagaDefinition
from orchestrator.definition._errors import DefinitionError, InvalidSagaDefinition


class UnknownDefinition(DefinitionError, LookupError):  # noqa: N818 - reads as the condition, like KeyError
    """No deployed definition has this name (and version)."""


class DefinitionRegistry:
    """Every deployed version of every saga. Keep old versions deployed until no saga runs on them
    (``sagaline saga list --type <name> --version <n> --status running``)."""

    def __init__(self, definitions: Iterable[SagaDefinition[Any]]) -> None:
        self._versions: dict[str, dict[int, SagaDefinition[Any]]] = {}
        self._by_start: dict[str, str] = {}
        problems: list[str] = []
        for definition in definitions:
            versions = self._versions.setdefault(definition.name, {})
            if definition.version in versions:
                problems.append(f"{definition.name} v{definition.version} is registered twice")
            versions[definition.version] = definition
            start = definition.start.type_name()
            owner = self._by_start.setdefault(start, definition.name)
            if owner != definition.name:
                problems.append(f"{start} starts both {owner!r} and {definition.name!r}; give each saga its own")
        if problems:
            raise InvalidSagaDefinition("registry", problems)

    def latest(self, name: str) -> SagaDefinition[Any]:
        """The version new sagas of this type start on."""
        versions = self._versions.get(name)
        if not versions:
            raise UnknownDefinition(f"no saga definition {name!r}; deployed: {', '.join(self.names()) or 'none'}")
        return versions[max(versions)]

    def get(self, name: str, version: int) -> SagaDefinition[Any]:
        """The exact version a saga started on."""
        found = self._versions.get(name, {}).get(version)
        if found is None:
            deployed = ", ".join(f"v{v}" for v in self.versions(name)) or "none"
            raise UnknownDefinition(
                f"saga definition {name!r} v{version} is not deployed (deployed: {deployed}); "
                "deploy it again until its sagas have finished",
            )
        return found

    def for_start(self, start_type: str) -> SagaDefinition[Any] | None:
        """The latest definition that this start command type begins, if any."""
        name = self._by_start.get(start_type)
        return None if name is None else self.latest(name)

    def names(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, name: str) -> list[int]:
        return sorted(self._versions.get(name, {}))

    def __iter__(self) -> Iterator[SagaDefinition[Any]]:
        for name in self.names():
            yield from (self._versions[name][v] for v in self.versions(name))

    def __contains__(self, name: object) -> bool:
        return name in self._versions
