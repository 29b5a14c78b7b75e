"""Mermaid rendering of a saga's state machine."""

from __future__ import annotations

from typing import Any

from orchestrator.definition._dsl import SagaDefinition
from orchestrator.definition._machine import COMPENSATED, COMPLETED, FAILED, START, compile_machine


def to_mermaid(definition: SagaDefinition[Any]) -> str:
    """``stateDiagram-v2`` text: forward steps, compensations (``undo_*``), and the terminal states."""
    machine = compile_machine(definition)
    lines = ["stateDiagram-v2", f"    %% saga {definition.name} v{definition.version}"]
    for step in definition.steps:
        lines.append(f"    {step.name}: {step.name} → {step.participant} ({step.command.type_name()})")
        if step.compensation is not None:
            lines.append(f"    undo_{step.name}: undo {step.name} ({step.compensation.command.type_name()})")
    for edge in machine.edges:
        source = "[*]" if edge.source == START else edge.source
        lines.append(f"    {source} --> {edge.target}: {edge.label}")
    lines += [f"    {COMPLETED} --> [*]", f"    {COMPENSATED} --> [*]"]
    if FAILED in machine.states:
        lines.append(f"    note right of {FAILED}: operator runs sagaline saga resume")
    lines.append("    classDef terminal fill:#e8f5e9,stroke:#2e7d32")
    lines.append("    classDef broken fill:#ffebee,stroke:#c62828")
    lines.append(f"    class {COMPLETED},{COMPENSATED} terminal")
    if FAILED in machine.states:
        lines.append(f"    class {FAILED} broken")
    return "\n".join(lines) + "\n"
