"""The measurement: a warm-up, ``repeats`` closed-loop runs, then ``repeats`` open-loop runs at the offered rate
(by default half the closed-loop median), each between counter snapshots taken once the stack is quiet. With the
embedded broker every run after the first starts on a fresh broker and fresh services, warmed up again: this
broker's cost per produce grows with what it holds, so later runs would otherwise measure that growth."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from statistics import median
from typing import Any, TextIO

from bench import _hops, _pg_meter, _readonly
from bench._calibration import python_loop_ms
from bench._console import ticking
from bench._periodic import Periodic
from bench._pg_meter import BacklogSampler
from bench._snapshot import Meters, Snapshot
from bench._stack import describe
from bench._starter import Starter
from bench._summary import MeasuredRun
from bench._watch import TerminalWatcher
from bench._workloads import CLOSED, OPEN, RunRecord, closed_loop, open_loop
from orchestrator.launch import AuditReport, Stack, audit, plan_orders
from orchestrator.persistence import create_engine

# The closed loop starts the next saga when it notices one ended. The open loop's starts keep their schedule
# whatever the watcher sees, and latency comes from each row's updated_at, so there a poll only moves the
# progress line and the end of the run: 4 polls a second instead of 50 (each looks up every saga in flight).
POLL_S = {CLOSED: 0.01, OPEN: 0.25}
# Counting five outbox tables full of just-deleted rows took Postgres 2.3 ms (pg_stat_statements): at 100 ms
# that was ~2 % of a core taken from the stack it measures; a backlog under load lasts longer than 0.5 s.
BACKLOG_EVERY_S = 0.5
IDLE_SETTLE_S = 0.5  # past the idle threshold before the idle baseline starts


@dataclass(frozen=True)
class Options:
    sagas: int
    concurrency: int
    rate_per_s: float | None
    failure_share: float
    repeats: int
    warmup: int
    timeout_s: float
    fresh_broker: bool = True  # each measured run on a fresh embedded broker (no effect on a configured one)


@dataclass
class Measured:
    closed: list[MeasuredRun]
    opened: list[MeasuredRun]
    offered_rate_per_s: float
    idle_commits_per_s: float
    idle_cpu_ms_per_s: dict[str, float]
    audit: AuditReport
    peak_rss_mb: dict[str, float]
    services: tuple[str, ...]
    load_average_1m: dict[str, float] = field(default_factory=dict)  # other work on the machine, before and after


class _Session:
    """The connections, producer and meters of one measurement."""

    def __init__(self, stack: Stack, options: Options, progress: TextIO, conns: list[Any]) -> None:
        self.stack, self.options, self.progress = stack, options, progress
        self.watch_conn, self.meter_conn, self.backlog_conn = conns
        self.starter = Starter(stack.settings)
        self.meters = Meters(stack, self.meter_conn)
        self._peak_rss_mb: dict[str, float] = {}
        self._runs = 0
        self.saga_ids: list[str] = []
        self.idle_commits_per_s = 0.0
        self.idle_cpu_ms_per_s: dict[str, float] = {}
        self._last: Snapshot | None = None

    async def run(self, workload: str, sagas: int, label: str, rate_per_s: float | None = None) -> RunRecord:
        orders = [p.command for p in plan_orders(sagas, failure_share=self.options.failure_share, run_id=_run_id())]
        self.saga_ids += [o.saga_id or o.order_id for o in orders]
        record = RunRecord(workload=workload, sagas=sagas)
        watcher = TerminalWatcher(self.watch_conn)
        began = time.monotonic()

        def status() -> str:
            ended = len(watcher.ended)
            rate = ended / (time.monotonic() - began)
            counts = f"{len(record.sent_at)}/{sagas} started, {ended} ended, {watcher.in_flight} in flight"
            return f"{label}: {counts}, {rate:.1f} sagas/s"

        async with (
            Periodic(watcher.poll, lambda: watcher.poll_interval_s(POLL_S[workload]), name="terminal-watcher"),
            ticking(self.progress, status),
        ):
            if workload == CLOSED:
                await closed_loop(
                    self.starter,
                    watcher,
                    orders,
                    record,
                    concurrency=self.options.concurrency,
                    timeout_s=self.options.timeout_s,
                )
            else:
                assert rate_per_s is not None
                await open_loop(
                    self.starter, watcher, orders, record, rate_per_s=rate_per_s, timeout_s=self.options.timeout_s
                )
        return record

    async def measured(self, workload: str, label: str, rate_per_s: float | None = None) -> MeasuredRun:
        if self._runs and self.options.fresh_broker and self.stack.broker is not None:
            await self.renew_broker(label)
        self._runs += 1
        before = self._last or await self.quiet_snapshot()
        loop_before = python_loop_ms()  # the stack is quiet: the loop measures the machine, not the run
        backlog = BacklogSampler(self.backlog_conn)
        async with Periodic(backlog.sample, BACKLOG_EVERY_S, name="outbox-backlog"):
            record = await self.run(workload, self.options.sagas, label, rate_per_s)
        self._last = after = await self.quiet_snapshot()
        extra: dict[str, Any] = {"offered_rate_per_s": rate_per_s} if rate_per_s is not None else {}
        extra["python_loop_ms"] = {"before": loop_before, "after": python_loop_ms()}
        extra["step_timeouts"] = await _pg_meter.step_timeouts(self.meter_conn, list(record.sent_at))
        extra["legs_ms"] = await _hops.legs(self.meter_conn, record.sent_at)
        return MeasuredRun(record, before, after, backlog.peak, self.idle_commits_per_s, extra)

    async def renew_broker(self, label: str) -> None:
        """A fresh embedded broker and fresh service processes (``Stack.renew_broker``), warmed up again."""
        print(f"{label}: renewing the embedded broker and the services", file=self.progress, flush=True)
        self._peak_rss_mb = self.peak_rss_mb()
        with _quiet("aiokafka"):  # the harness's producer reports the restart it rides out
            await self.stack.renew_broker()
            self.meters, self._last = Meters(self.stack, self.meter_conn), None
            if self.options.warmup:
                await self.run(CLOSED, self.options.warmup, f"{label}: warm-up")

    def peak_rss_mb(self) -> dict[str, float]:
        """Each service's peak over every process it ran as."""
        now = self.meters.peak_rss_mb()
        return {name: max(now.get(name, 0.0), self._peak_rss_mb.get(name, 0.0)) for name in now | self._peak_rss_mb}

    async def measure_idle(self, seconds: float = 3.0) -> None:
        """The commits per second of the services doing nothing, subtracted from every run's count, and each
        process's CPU meanwhile. Measured once the consumers' fetch waits have stretched, if they do
        (``SAGALINE_FETCH_IDLE_MAX_WAIT_MS``): how a stack left idle runs."""
        settings = self.stack.settings
        if settings.fetch_idle_max_wait_ms:
            await asyncio.sleep(settings.fetch_idle_after_ms / 1000 + IDLE_SETTLE_S)
        before = await self.quiet_snapshot()
        await asyncio.sleep(seconds)
        self._last = after = await self.quiet_snapshot()
        elapsed = after.at - before.at
        self.idle_commits_per_s = (after.commits - before.commits) / elapsed
        self.idle_cpu_ms_per_s = {
            name: round(1000 * (after.cpu_s[name] - before.cpu_s.get(name, 0.0)) / elapsed, 1) for name in after.cpu_s
        }

    async def quiet_snapshot(self) -> Snapshot:
        await _pg_meter.drained(self.meter_conn)
        return await self.meters.snapshot()


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _run_id() -> str:
    return uuid.uuid4().hex[:8]


async def measure(stack: Stack, options: Options, progress: TextIO) -> Measured:
    began = time.monotonic()
    await stack.start()
    print(f"stack up in {time.monotonic() - began:.1f} s ({describe(stack)})", file=progress, flush=True)
    assert stack.database_url is not None
    conns = [await _readonly.connect(stack.database_url) for _ in range(3)]
    session = _Session(stack, options, progress, conns)
    await session.starter.start()
    try:
        if options.warmup:
            await session.run(CLOSED, options.warmup, "warm-up")
        await session.measure_idle()
        load_before = os.getloadavg()[0]
        closed = [await session.measured(CLOSED, f"closed {k + 1}/{options.repeats}") for k in range(options.repeats)]
        rate = options.rate_per_s or max(1.0, float(round(median(r.record.sagas_per_s for r in closed) / 2)))
        opened = [
            await session.measured(OPEN, f"open {k + 1}/{options.repeats} at {rate:g}/s", rate)
            for k in range(options.repeats)
        ]
        report = await _audit(stack.database_url, session.saga_ids)
        return Measured(
            closed=closed,
            opened=opened,
            offered_rate_per_s=rate,
            idle_commits_per_s=round(session.idle_commits_per_s, 1),
            idle_cpu_ms_per_s=session.idle_cpu_ms_per_s,
            audit=report,
            peak_rss_mb=session.peak_rss_mb(),
            services=tuple(session.meters.services),
            load_average_1m={"start": load_before, "end": os.getloadavg()[0]},
        )
    finally:
        await session.starter.stop()
        for conn in conns:
            await conn.close()


async def _audit(database_url: str, saga_ids: list[str]) -> AuditReport:
    engine = create_engine(database_url, pool_size=1)
    try:
        return await audit(engine, saga_ids)
    finally:
        await engine.dispose()
