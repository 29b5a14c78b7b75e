"""The figures of one run and of a workload's repeated runs, in the JSON shape other tools read."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from bench._snapshot import HARNESS, Snapshot
from bench._workloads import RunRecord
from orchestrator.launch import percentile

OUTCOMES = ("completed", "compensated", "failed", "unfinished")
LATENCY_MARKS = {"p50": 0.50, "p90": 0.90, "p99": 0.99}


def marks(values_ms: list[float], fractions: dict[str, float]) -> dict[str, float]:
    """The named percentiles of these values (ms, to 0.1)."""
    ordered = sorted(values_ms)
    return {name: round(percentile(ordered, fraction), 1) for name, fraction in fractions.items()}


def latency_figures(latencies_ms: list[float]) -> dict[str, float]:
    return marks(latencies_ms, LATENCY_MARKS) | {"max": round(max(latencies_ms), 1) if latencies_ms else 0.0}


def _per(count: float, by: float, digits: int = 1) -> float:
    return round(count / by, digits) if by > 0 else 0.0


@dataclass
class MeasuredRun:
    record: RunRecord
    before: Snapshot
    after: Snapshot
    backlog_peak: int
    idle_commits_per_s: float = 0.0  # what the idle services commit anyway (sweepers, relay polls)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def idle_commits(self) -> int:
        return round(self.idle_commits_per_s * (self.after.at - self.before.at))

    @property
    def commits(self) -> int:
        """Commits the run caused: the counter's delta less the idle services' baseline over the same window."""
        return max(0, self.after.commits - self.before.commits - self.idle_commits)

    @property
    def messages(self) -> int:
        return self.after.messages - self.before.messages

    def cpu_s(self) -> dict[str, float]:
        return {name: round(self.after.cpu_s[name] - self.before.cpu_s.get(name, 0.0), 2) for name in self.after.cpu_s}

    def machine_cpu_pct(self) -> dict[str, float]:
        """Over the run, as a share of all the machine's CPUs: ``steal``, what the hypervisor took away, and
        ``other``, what the machine did besides the stack and the harness. Either one growing means the same
        code measures slower: read A/B figures against them."""
        capacity = (self.after.at - self.before.at) * (os.cpu_count() or 1)
        steal = self.after.machine_steal_s - self.before.machine_steal_s
        other = self.after.machine_busy_s - self.before.machine_busy_s - sum(self.cpu_s().values())
        return {"steal": _per(steal * 100, capacity), "other": _per(max(0.0, other) * 100, capacity)}

    def figures(self) -> dict[str, Any]:
        record, ended = self.record, len(self.record.ended)
        return {
            "sagas_per_s": round(record.sagas_per_s, 1),
            "latency_ms": latency_figures(record.latencies_ms),
            "outcomes": record.outcomes(),
            **self.extra,
            "elapsed_s": round(record.elapsed_s, 2),
            "sent_per_s": _per(len(record.sent_at), record.sending_s),
            "postgres_commits": self.commits,
            "postgres_commits_idle": self.idle_commits,
            "kafka_messages": self.messages,
            "postgres_commits_per_s": _per(self.commits, record.elapsed_s),
            "kafka_messages_per_s": _per(self.messages, record.elapsed_s),
            "per_saga": {
                "postgres_commits": _per(self.commits, ended, 2),
                "kafka_messages": _per(self.messages, ended, 2),
            },
            "outbox_backlog_peak": self.backlog_peak,
            "cpu_s": self.cpu_s(),
            "cpu_ms_per_saga": _per(sum(s for n, s in self.cpu_s().items() if n != HARNESS) * 1000, ended),
            "machine_cpu_pct": self.machine_cpu_pct(),
        }


def workload(runs: list[MeasuredRun]) -> dict[str, Any]:
    """Medians over the runs (outcomes: totals, so that one bad run shows), and every run's own figures."""
    figures = [run.figures() for run in runs]
    return {
        "sagas_per_s": round(median(f["sagas_per_s"] for f in figures), 1),
        "latency_ms": {k: round(median(f["latency_ms"][k] for f in figures), 1) for k in figures[0]["latency_ms"]},
        "outcomes": {k: sum(f["outcomes"].get(k, 0) for f in figures) for k in OUTCOMES},
        "runs": figures,
    }


def median_of(runs: list[MeasuredRun], *path: str) -> float:
    """The median over runs of one (nested) figure, e.g. ``median_of(runs, "per_saga", "kafka_messages")``."""
    values = []
    for figures in (run.figures() for run in runs):
        value: Any = figures
        for key in path:
            value = value[key]
        values.append(float(value))
    return round(median(values), 2)
