"""The report: one JSON object (the shape ``bench/README.md`` documents), the JSON file and the latency plots."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from statistics import median
from typing import Any

import psutil

from bench._harness import Measured, Options
from bench._snapshot import HARNESS
from bench._summary import MeasuredRun, median_of, workload
from orchestrator.launch._artifacts import write_latency_plot


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def _cpu_median(runs: list[MeasuredRun], name: str) -> float:
    return round(median(run.cpu_s().get(name, 0.0) for run in runs), 2)


def _idle_cpu(measured: Measured) -> dict[str, float]:
    """Each process's CPU with nothing to do, and the stack's (services, broker, Postgres) in all."""
    per_process = measured.idle_cpu_ms_per_s
    stack = sum(ms for name, ms in per_process.items() if name != HARNESS)
    return per_process | {"stack": round(stack, 1)}


def build(measured: Measured, options: Options, infrastructure: dict[str, Any]) -> dict[str, Any]:
    closed = measured.closed
    infra_cpu = {name: _cpu_median(closed, name) for name in closed[0].after.cpu_s if name not in measured.services}
    return {
        "harness": "sagaline",
        "sagas": options.sagas,
        "concurrency": options.concurrency,
        "failure_share": options.failure_share,
        "repeats": options.repeats,
        "infrastructure": infrastructure
        | {"idle_postgres_commits_per_s": measured.idle_commits_per_s}
        | {"idle_cpu_ms_per_s": _idle_cpu(measured)}
        | ({"cpu_s": infra_cpu} if infra_cpu else {}),
        "machine": machine() | {"load_average_1m": measured.load_average_1m},
        "closed_loop": workload(closed),
        "open_loop": {"offered_rate_per_s": measured.offered_rate_per_s} | workload(measured.opened),
        "services": {
            name: {"cpu_s": _cpu_median(closed, name), "peak_rss_mb": round(measured.peak_rss_mb[name], 1)}
            for name in measured.services
        },
        "postgres_commits_per_s": median_of(closed, "postgres_commits_per_s"),
        "kafka_messages_per_s": median_of(closed, "kafka_messages_per_s"),
        "outbox_backlog_peak": max(run.backlog_peak for run in [*closed, *measured.opened]),
        "per_saga": {
            "postgres_commits": median_of(closed, "per_saga", "postgres_commits"),
            "kafka_messages": median_of(closed, "per_saga", "kafka_messages"),
        },
        "invariants_ok": measured.audit.ok,
    }


def ok(report: dict[str, Any]) -> bool:
    """Every saga ended and every invariant holds."""
    unfinished = report["closed_loop"]["outcomes"]["unfinished"] + report["open_loop"]["outcomes"]["unfinished"]
    return unfinished == 0 and bool(report["invariants_ok"])


def write_files(report: dict[str, Any], measured: Measured, output_dir: Path) -> list[Path]:
    """``saga_throughput.json`` and one latency plot per workload (all runs pooled); returns what it wrote."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [output_dir / "saga_throughput.json"]
    written[0].write_text(json.dumps(report, indent=2) + "\n")
    for name, runs, what in (
        ("closed_loop", measured.closed, f"closed loop, {report['concurrency']} in flight"),
        ("open_loop", measured.opened, f"open loop, {measured.offered_rate_per_s:g}/s offered"),
    ):
        figures = report[name]
        title = f"order saga, {what}: {figures['sagas_per_s']:.0f} sagas/s ({len(runs)} runs pooled)"
        plot = output_dir / f"latency_{name}.png"
        latencies = [value for run in runs for value in run.record.latencies_ms]
        if write_latency_plot(latencies, plot, title=title, marks=(0.50, 0.90, 0.99)) is None:
            written.append(plot)
    return written
