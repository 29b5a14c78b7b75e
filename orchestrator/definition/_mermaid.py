"""Mermaid rendering of a saga's state machine, optionally with the path one instance took highlighted."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from orchestrator.definition._dsl import SagaDefinition
from orchestrator.definition._machine import COMPENSATED, COMPLETED, FAILED, START, compile_machine


def to_mermaid(definition: SagaDefinition[Any], path: Sequence[str] = ()) -> str:
    """``stateDiagram-v2`` text: forward steps, compensations (``undo_*``), and the terminal states.

    ``path`` is the sequence of states one saga went through (``Start``, step names, ``undo_<step>``, terminal
    states): those states are highlighted, the last one as where the saga is now, and each edge it took is
    numbered in the order it took it."""
    machine = compile_machine(definition)
    taken: dict[tuple[str, str], list[int]] = {}
    for number, pair in enumerate(itertools.pairwise(path), start=1):
        taken.setdefault(pair, []).append(number)
    lines = ["stateDiagram-v2", f"    %% saga {definition.name} v{definition.version}"]
    for step in definition.steps:
        lines.append(f"    {step.name}: {step.name} → {step.participant} ({step.command.type_name()})")
        if step.compensation is not None:
            lines.append(f"    undo_{step.name}: undo {step.name} ({step.compensation.command.type_name()})")
    drawn: set[tuple[str, str]] = set()
    for edge in machine.edges:
        source = "[*]" if edge.source == START else edge.source
        pair = (edge.source, edge.target)
        label = edge.label
        if pair in taken and pair not in drawn:
            label += " ✔ " + ",".join(f"#{n}" for n in taken[pair])
            drawn.add(pair)
        lines.append(f"    {source} --> {edge.target}: {label}")
    lines += [f"    {COMPLETED} --> [*]", f"    {COMPENSATED} --> [*]"]
    if FAILED in machine.states:
        lines.append(f"    note right of {FAILED}: operator runs sagaline saga resume")
    lines.append("    classDef terminal fill:#e8f5e9,stroke:#2e7d32")
    lines.append("    classDef broken fill:#ffebee,stroke:#c62828")
    lines.append(f"    class {COMPLETED},{COMPENSATED} terminal")
    if FAILED in machine.states:
        lines.append(f"    class {FAILED} broken")
    visited = [s for s in dict.fromkeys(path) if s != START and s in machine.states]
    if visited:
        lines.append("    classDef visited fill:#fff3cd,stroke:#b8860b,stroke-width:3px")
        lines.append("    classDef current fill:#ffd54f,stroke:#e65100,stroke-width:4px")
        lines.append(f"    class {','.join(visited)} visited")
        lines.append(f"    class {visited[-1] if path[-1] == START else path[-1]} current")
        lines.append(f"    %% path: {' → '.join(path)}")
    return "\n".join(lines) + "\n"
