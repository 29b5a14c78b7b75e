"""Counters before and after a run: Postgres commits, Kafka messages, CPU seconds per process."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from bench import _pg_meter
from bench._kafka_meter import KafkaMeter
from bench._processes import cpu_seconds, machine_cpu_s, peak_rss_mb
from orchestrator.launch import Stack

HARNESS = "harness"


@dataclass(frozen=True)
class Snapshot:
    at: float  # monotonic seconds
    commits: int
    messages: int
    cpu_s: dict[str, float]
    machine_busy_s: float = 0.0
    machine_steal_s: float = 0.0


class Meters:
    def __init__(self, stack: Stack, conn: Any) -> None:
        assert stack.cluster is not None, "start the stack first"
        assert stack.bootstrap_servers is not None
        self._conn = conn
        self._kafka = KafkaMeter(stack.bootstrap_servers, stack.settings.topics.all())
        self.services = {name: s.process.pid for name, s in stack.cluster.services.items() if s.process}
        self.infrastructure = {
            name: pid
            for name, pid in (
                ("postgres", stack.postgres.pid if stack.postgres else None),
                ("broker", stack.broker.pid if stack.broker else None),
            )
            if pid is not None
        } | {HARNESS: os.getpid()}  # its own CPU, to show what measuring costs

    async def snapshot(self) -> Snapshot:
        """Call after ``_pg_meter.drained``: the relays caught up and the statistics published."""
        pids = self.services | self.infrastructure
        busy, steal = machine_cpu_s()
        return Snapshot(
            at=time.monotonic(),
            commits=await _pg_meter.commits(self._conn),
            messages=await self._kafka.total(),
            # The harness's children are the stack itself: count its own CPU only.
            cpu_s={name: cpu_seconds(pid, children=name != HARNESS) for name, pid in pids.items()},
            machine_busy_s=busy,
            machine_steal_s=steal,
        )

    def peak_rss_mb(self) -> dict[str, float]:
        return {name: peak_rss_mb(pid) for name, pid in self.services.items()}
