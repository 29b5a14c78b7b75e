"""The path a saga took, from its history, drawn on its state diagram."""

from __future__ import annotations

from typing import Any

from orchestrator.admin import path_of, to_html
from orchestrator.definition import to_mermaid
from orchestrator.sagas import ORDER_FULFILLMENT


def event(kind: str, step: str | None = None) -> dict[str, Any]:
    return {"type": kind, "step": step, "payload": {}}


HISTORY = [
    event("started"),
    event("command_sent", "create_order"),
    event("step_completed", "create_order"),
    event("command_sent", "reserve_inventory"),
    event("timed_out", "reserve_inventory"),
    event("command_sent", "reserve_inventory"),  # the resend: the same state
    event("step_failed", "reserve_inventory"),
    event("compensation_started", "reserve_inventory"),
    event("compensation_sent", "create_order"),
    event("compensated"),
]


def test_the_path_lists_each_state_once_per_visit() -> None:
    assert path_of(HISTORY) == ["Start", "create_order", "reserve_inventory", "undo_create_order", "Compensated"]


def test_the_diagram_numbers_the_edges_taken_and_marks_where_the_saga_is() -> None:
    text = to_mermaid(ORDER_FULFILLMENT, path_of(HISTORY))
    lines = text.splitlines()
    assert "    [*] --> create_order: start ✔ #1" in lines
    assert "    create_order --> reserve_inventory: OrderCreated ✔ #2" in lines
    assert "    reserve_inventory --> undo_create_order: failed ✔ #3" in lines
    assert "    undo_create_order --> Compensated: OrderCancelled ✔ #4" in lines
    assert "    class create_order,reserve_inventory,undo_create_order,Compensated visited" in lines
    assert "    class Compensated current" in lines
    assert sum("✔" in line for line in lines) == 4
    plain = to_mermaid(ORDER_FULFILLMENT)
    assert "✔" not in plain
    assert "visited" not in plain


def test_html_embeds_the_escaped_diagram() -> None:
    page = to_html("stateDiagram-v2\n    a --> b: x < y\n", "order <1>")
    assert "<title>order &lt;1&gt;</title>" in page
    assert "a --&gt; b: x &lt; y" in page
    assert "mermaid.initialize" in page
