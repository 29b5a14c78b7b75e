"""Files a batch's result is written to: ``summary.json``, the saga's path as Mermaid, the latency plot, logs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.launch._driver import percentile
from orchestrator.launch._stack import Stack
from orchestrator.sagas import ORDER_FULFILLMENT


def saga_path_mermaid(saga_id: str, history: Sequence[dict[str, Any]]) -> str:
    """A ``sequenceDiagram`` of one saga's actual path, from its ``sagaline.saga_event`` history."""
    participant_of = {step.name: step.participant for step in ORDER_FULFILLMENT.steps}
    lines = ["sequenceDiagram", f"    %% saga {saga_id}: the path it took, from sagaline.saga_event", "    autonumber"]
    lines += ["    participant O as orchestrator"]
    lines += [f"    participant {p}" for p in dict.fromkeys(participant_of.values())]
    start = history[0]["at"] if history else None
    for event in history:
        kind, step, payload = event["type"], event["step"], event["payload"] or {}
        who = participant_of.get(step or "", "O")
        at = f" (+{(event['at'] - start).total_seconds() * 1000:.0f} ms)" if start is not None else ""
        if kind == "started":
            lines.append(f"    Note over O: saga started{at}")
        elif kind == "command_sent":
            lines.append(f"    O->>{who}: {_m(payload.get('command', kind))}{at}")
        elif kind == "compensation_sent":
            lines.append(f"    O-){who}: undo {step}: {_m(payload.get('command', kind))}{at}")
        elif kind == "reply_received":
            lines.append(f"    {who}-->>O: {_m(payload.get('reply', 'reply'))}{at}")
        elif kind == "step_failed":
            lines.append(f"    Note over O,{who}: {step} failed: {_m(payload.get('reason', ''))}")
        elif kind == "compensation_started":
            lines.append(f"    Note over O: compensating {', '.join(payload.get('to_compensate', []))} in reverse")
        elif kind in {"completed", "compensated", "failed"}:
            lines.append(f"    Note over O: {kind}{at}")
        elif kind not in {"step_completed", "step_compensated"}:  # timed_out, retrying, expired, …
            over = "O" if who == "O" else f"O,{who}"
            attempt = f" (attempt {payload['attempt']})" if "attempt" in payload else ""
            lines.append(f"    Note over {over}: {kind} {step or ''}{attempt}{at}")
    return "\n".join(lines) + "\n"


def _m(value: object) -> str:
    """Mermaid message text: no statement separators or comment starts."""
    return str(value).replace(";", ",").replace("#", "")[:90]


def save_logs(stack: Stack, destination: Path) -> None:
    """The stack's workdir is deleted at exit; its services' logs are worth keeping."""
    logs = stack.workdir / "logs"
    if logs.is_dir():
        shutil.copytree(logs, destination, dirs_exist_ok=True)


def write_summary(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")


def write_latency_plot(
    latencies: Sequence[float],
    path: Path,
    *,
    title: str,
    marks: Sequence[float] = (0.50, 0.99),
) -> str | None:
    """Histogram and CDF of saga latency with percentiles marked; returns why not when it cannot draw."""
    if not latencies:
        return "no terminal sagas, so no latency plot"
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional extra, slow to import

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "matplotlib is not installed (pip install 'sagaline[plot]'), so no latency plot"
    values = sorted(latencies)
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    hist.hist(values, bins=min(60, max(10, len(values) // 10)), color="#4c72b0", edgecolor="white")
    hist.set(xlabel="saga latency (ms)", ylabel="sagas", title="histogram")
    cdf.plot(values, [(i + 1) / len(values) for i in range(len(values))], color="#4c72b0")
    cdf.set(xlabel="saga latency (ms)", ylabel="share of sagas", title="CDF", ylim=(0, 1.02))
    for fraction, colour in zip(marks, ("#2e7d32", "#ef6c00", "#c62828"), strict=False):
        value = percentile(values, fraction)
        label = f"p{round(fraction * 100)} = {value:.0f} ms"
        for axes in (hist, cdf):
            axes.axvline(value, color=colour, linestyle="--", linewidth=1.2, label=label)
    hist.legend()
    cdf.grid(alpha=0.3)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
