"""Diagrams for operators: the path a saga took through its state machine, and rendering to HTML or SVG."""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator.definition._machine import COMPENSATED, COMPLETED, FAILED, START, undo

MERMAID_JS = "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.min.js"
_ENDS = {"completed": COMPLETED, "compensated": COMPENSATED, "failed": FAILED}


class DiagramFormat(StrEnum):
    MERMAID = "mermaid"
    HTML = "html"
    SVG = "svg"


class RendererMissingError(RuntimeError):
    """No SVG renderer on this machine."""


def path_of(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """The states a saga went through, in order, from its history (a resend does not repeat a state)."""
    path = [START]
    for event in events:
        kind, step = event["type"], event["step"]
        state = step if kind == "command_sent" else undo(step) if kind == "compensation_sent" else _ENDS.get(kind)
        if state is not None and state != path[-1]:
            path.append(state)
    return path


def to_html(mermaid: str, title: str) -> str:
    """A page that draws the diagram in any browser (Mermaid from its CDN)."""
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"<pre class='mermaid'>\n{html.escape(mermaid)}</pre>\n"
        f"<script src='{MERMAID_JS}'></script>\n"
        "<script>mermaid.initialize({startOnLoad: true});</script>\n</body></html>\n"
    )


def svg_renderer() -> str | None:
    """The Mermaid CLI (``npm install -g @mermaid-js/mermaid-cli``), if installed."""
    return shutil.which("mmdc")


def to_svg(mermaid: str) -> str:
    renderer = svg_renderer()
    if renderer is None:
        raise RendererMissingError(
            "no Mermaid renderer: install the Mermaid CLI (npm install -g @mermaid-js/mermaid-cli) for SVG, "
            "or use --format html (draws in a browser) or --format mermaid",
        )
    with tempfile.TemporaryDirectory(prefix="sagaline-diagram-") as tmp:
        source, target = Path(tmp, "in.mmd"), Path(tmp, "out.svg")
        source.write_text(mermaid)
        subprocess.run([renderer, "-i", str(source), "-o", str(target)], check=True, capture_output=True)  # noqa: S603
        return target.read_text()
