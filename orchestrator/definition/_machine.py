"""The state machine a definition compiles to: used to validate reachability and to draw the saga."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.definition._dsl import SagaDefinition, Step

START = "Start"
COMPLETED = "Completed"
COMPENSATED = "Compensated"
FAILED = "Failed"
TERMINALS = frozenset({COMPLETED, COMPENSATED, FAILED})


def undo(step: str) -> str:
    return f"undo_{step}"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


@dataclass(frozen=True)
class StateMachine:
    initial: str
    states: tuple[str, ...]
    edges: tuple[Edge, ...]

    def problems(self) -> list[str]:
        """Reachability: every state reachable from the start, and a terminal reachable from every state."""
        forward: dict[str, set[str]] = {s: set() for s in self.states}
        backward: dict[str, set[str]] = {s: set() for s in self.states}
        for edge in self.edges:
            forward[edge.source].add(edge.target)
            backward[edge.target].add(edge.source)
        reachable = _closure({self.initial}, forward)
        found = [f"state {s!r} cannot be reached from the start" for s in self.states if s not in reachable]
        can_finish = _closure(set(TERMINALS) & set(self.states), backward)
        found += [f"state {s!r} has no path to a terminal state" for s in self.states if s not in can_finish]
        return found


def _closure(seeds: set[str], graph: dict[str, set[str]]) -> set[str]:
    seen = set(seeds)
    queue = deque(seeds)
    while queue:
        for nxt in graph.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _candidates(steps: list[Step[Any]], end: str) -> list[tuple[str, str | None]]:
    """The states control may go to next, given that guarded steps may be skipped."""
    found: list[tuple[str, str | None]] = []
    for step in steps:
        found.append((step.name, step.when_label if step.when is not None else None))
        if step.when is None:
            return found
    found.append((end, None))
    return found


def compile_machine(definition: SagaDefinition[Any]) -> StateMachine:
    steps = list(definition.steps)
    compensable = [s for s in steps if s.compensation is not None]
    edges: list[Edge] = []

    def undo_targets(before: int) -> list[tuple[str, str | None]]:
        earlier = [s for s in reversed(steps[:before]) if s.compensation is not None]
        return [
            (undo(name) if name != COMPENSATED else name, label) for name, label in _candidates(earlier, COMPENSATED)
        ]

    def add(source: str, targets: list[tuple[str, str | None]], label: str) -> None:
        for target, guard in targets:
            edges.append(Edge(source, target, f"{label} [{guard}]" if guard else label))

    for i, step in enumerate(steps):
        success = step.replies[0].type_name() if step.replies else "success"
        add(step.name, _candidates(steps[i + 1 :], COMPLETED), success)
        add(step.name, undo_targets(i), "failed")
        in_doubt: list[tuple[str, str | None]] = (
            [(undo(step.name), None)] if step.compensation is not None else undo_targets(i)
        )
        add(step.name, in_doubt, "timed out / cancelled")
    for step in compensable:
        assert step.compensation is not None
        done = step.compensation.replies[0].type_name() if step.compensation.replies else "compensated"
        add(undo(step.name), undo_targets(steps.index(step)), done)
        edges.append(Edge(undo(step.name), FAILED, "compensation exhausted"))
        edges.append(Edge(FAILED, undo(step.name), "resume"))
    add(START, _candidates(steps, COMPLETED), "start")
    states = [START] + [s.name for s in steps] + [undo(s.name) for s in compensable] + [COMPLETED, COMPENSATED]
    if compensable:
        states.append(FAILED)
    return StateMachine(initial=START, states=tuple(states), edges=tuple(dict.fromkeys(edges)))
