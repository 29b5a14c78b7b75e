"""One batch of orders through a local stack, measured and written up. Shared by ``sagaline demo`` and the bench.

* :func:`local_stack` owns a stack's lifetime: a temporary workdir, embedded infrastructure unless URLs are given,
  and clean-up of every process and directory on success, error, Ctrl-C and SIGTERM.
* :func:`run_batch` sends a planned batch, watches it to the end, and returns the figures, the invariant audit
  and one compensated saga's history.
(The files a result is written to come from ``_artifacts``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import PlaceOrder
from orchestrator import telemetry
from orchestrator.launch._audit import AuditReport, audit
from orchestrator.launch._catalog import Scenario, plan_orders
from orchestrator.launch._driver import TERMINAL, Progress, latencies_ms, percentile, send_orders, wait_terminal
from orchestrator.launch._processes import SERVICES
from orchestrator.launch._stack import Stack
from orchestrator.persistence import create_engine
from orchestrator.sagas import ORDER_FULFILLMENT


class Sender(Protocol):
    """Sends a batch's start commands in its own way: the seam for ``--chaos`` (e.g. ``run_with_chaos``, which
    kills and restarts services while it sends and re-sends starts a restarted broker lost). Returns when each
    start was sent, by saga id, and extra top-level summary keys (e.g. ``{"chaos": {...}}``)."""

    def __call__(
        self, stack: Stack, engine: AsyncEngine, commands: list[PlaceOrder], /
    ) -> Coroutine[Any, Any, tuple[dict[str, datetime], dict[str, Any]]]: ...


@dataclass
class BatchResult:
    orders: int
    by_status: dict[str, int]
    elapsed_s: float
    latencies_ms: list[float]
    audit: AuditReport
    failures_by_step: dict[str, int] = field(default_factory=dict)
    off_design: list[str] = field(default_factory=list)  # ended otherwise than planned (e.g. after timeouts)
    timeouts: int = 0  # step deadlines that passed (the command is re-sent, or the saga compensates)
    examples: dict[str, str] = field(default_factory=dict)  # status -> one saga id
    compensated_history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # from a custom sender

    @property
    def completed(self) -> int:
        return self.by_status.get("completed", 0)

    @property
    def compensated(self) -> int:
        return self.by_status.get("compensated", 0)

    @property
    def failed(self) -> int:
        return self.by_status.get("failed", 0)

    @property
    def in_flight(self) -> int:
        return self.orders - self.completed - self.compensated - self.failed

    @property
    def sagas_per_s(self) -> float:
        return (self.completed + self.compensated + self.failed) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def p(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)

    @property
    def ok(self) -> bool:
        """Every saga terminal, none needing an operator, every invariant holds."""
        return self.in_flight == 0 and self.failed == 0 and self.audit.ok

    def summary(self) -> dict[str, Any]:
        """The stable JSON shape (users' scripts read the first eight keys)."""
        return {
            "orders": self.orders,
            "completed": self.completed,
            "compensated": self.compensated,
            "failed": self.failed,
            "sagas_per_s": round(self.sagas_per_s, 1),
            "p50_ms": round(self.p(0.50), 1),
            "p99_ms": round(self.p(0.99), 1),
            "invariants_ok": self.audit.ok,
            "in_flight": self.in_flight,
            "p95_ms": round(self.p(0.95), 1),
            "elapsed_s": round(self.elapsed_s, 2),
            "violations": list(self.audit.violations),
            "failures_by_step": dict(self.failures_by_step),
            "off_design": len(self.off_design),
            "timeouts": self.timeouts,
            "example_saga_ids": dict(self.examples),
            **self.extra,
        }


@contextlib.contextmanager
def local_stack(
    *,
    database_url: str | None = None,
    bootstrap_servers: str | None = None,
    topic_prefix: str = "",
    extra_env: dict[str, str] | None = None,
    services: tuple[str, ...] = SERVICES,
) -> Iterator[Stack]:
    """A stack in a fresh temporary workdir (embedded Postgres / broker where no URL is given). Everything it
    started is stopped and the workdir deleted when the block exits, however it exits; SIGTERM counts as Ctrl-C."""
    workdir = Path(tempfile.mkdtemp(prefix="sagaline-demo-"))
    stack = Stack(
        workdir=workdir,
        database_url=database_url,
        bootstrap_servers=bootstrap_servers,
        topic_prefix=topic_prefix,
        extra_env=extra_env or {},
        services=services,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield stack
    finally:
        with _signals_ignored():
            try:
                _join_starters()
                stack.stop()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
                signal.signal(signal.SIGTERM, previous)


def _join_starters() -> None:
    """An interrupt can cut asyncio.run short while a worker thread still starts Postgres or the services:
    let it finish, so that stopping the stack sees everything that was started."""
    for thread in threading.enumerate():
        if thread.name.startswith("asyncio_") and thread is not threading.current_thread():
            thread.join(timeout=120)


def _interrupt(_signum: int, frame: FrameType | None) -> None:
    """SIGTERM does what Ctrl-C does. Inside ``asyncio.run`` that cancels the main task; a KeyboardInterrupt
    raised wherever the signal lands could hit a library's background task (aiokafka's sender) and be lost."""
    on_ctrl_c = signal.getsignal(signal.SIGINT)
    if not callable(on_ctrl_c):
        raise KeyboardInterrupt
    on_ctrl_c(signal.SIGINT, frame)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Clean-up must finish: a second Ctrl-C would otherwise leave processes behind."""
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


async def run_batch(
    stack: Stack,
    orders: int,
    *,
    failure_share: float = 0.2,
    timeout_s: float = 300,
    on_progress: Callable[[Progress], None] = lambda _p: None,
    rate_per_s: float | None = None,
    sender: Sender | None = None,
) -> BatchResult:
    """Send ``orders`` start commands (a designed share failing at each step) and wait until all are terminal.
    All at once by default (latency then includes queueing); ``rate_per_s`` paces them; ``sender`` replaces both."""
    assert stack.database_url is not None, "start the stack first"
    planned = {p.command.saga_id or p.command.order_id: p for p in plan_orders(orders, failure_share=failure_share)}
    saga_ids = list(planned)
    engine = create_engine(stack.database_url, pool_size=2)
    try:
        commands = [p.command for p in planned.values()]
        sent_at, extra = await (sender or _paced(rate_per_s))(stack, engine, commands)
        progress = await wait_terminal(engine, saga_ids, timeout_s=timeout_s, on_progress=on_progress)
        result = BatchResult(
            orders=orders,
            by_status=progress.by_status,
            elapsed_s=await _elapsed_s(engine, sent_at),
            latencies_ms=await latencies_ms(engine, sent_at),
            audit=await audit(engine, saga_ids),
            extra=extra,
        )
        await _describe(engine, {saga_id: p.scenario for saga_id, p in planned.items()}, result)
        compensated = result.examples.get("compensated")
        if compensated and telemetry.enabled_by_env():  # a trace to open in Jaeger
            result.extra["compensated_trace_id"] = await telemetry.saga_trace_id(engine, compensated)
    finally:
        await engine.dispose()
    return result


def _paced(rate_per_s: float | None) -> Sender:
    async def send(
        stack: Stack, _engine: AsyncEngine, commands: list[PlaceOrder]
    ) -> tuple[dict[str, datetime], dict[str, Any]]:
        if not rate_per_s:
            return await send_orders(stack.settings, commands), {}
        chunk = max(1, round(rate_per_s * 0.2))  # five sends a second
        sent_at: dict[str, datetime] = {}
        started = time.monotonic()
        for n, first in enumerate(range(0, len(commands), chunk)):
            await asyncio.sleep(max(0.0, started + n * chunk / rate_per_s - time.monotonic()))
            sent_at |= await send_orders(stack.settings, commands[first : first + chunk])
        return sent_at, {"rate_per_s": rate_per_s}

    return send


async def _elapsed_s(engine: AsyncEngine, sent_at: dict[str, datetime]) -> float:
    """From the first start command sent to the last saga's last state change."""
    async with engine.connect() as conn:
        last = (
            await conn.execute(
                text("SELECT max(updated_at) FROM sagaline.saga_instance WHERE id = ANY(:ids)"),
                {"ids": list(sent_at)},
            )
        ).scalar_one_or_none()
    return (last - min(sent_at.values())).total_seconds() if last is not None and sent_at else 0.0


async def _describe(engine: AsyncEngine, planned: dict[str, Scenario], result: BatchResult) -> None:
    """Where the failures happened, what did not go as designed, one example saga per terminal status, and a
    compensated saga's history."""
    saga_ids = list(planned)
    steps = [s.name for s in ORDER_FULFILLMENT.steps]
    async with engine.connect() as conn:
        sagas = await conn.execute(
            text(
                "SELECT id, status, split_part(failure_reason, ':', 1) AS step FROM sagaline.saga_instance "
                "WHERE id = ANY(:ids)",
            ),
            {"ids": saga_ids},
        )
        failed_at: dict[str, int] = {}
        for saga in sagas:
            if saga.status in TERMINAL and saga.status != planned[saga.id].expected_status:
                result.off_design.append(f"{saga.id}: {saga.status}, designed {planned[saga.id].expected_status}")
            if saga.status in {"compensated", "failed"}:
                failed_at[saga.step] = failed_at.get(saga.step, 0) + 1
        result.failures_by_step = {s: failed_at.pop(s) for s in steps if s in failed_at} | failed_at
        result.timeouts = (
            await conn.execute(
                text("SELECT count(*) FROM sagaline.saga_event WHERE type = 'timed_out' AND saga_id = ANY(:ids)"),
                {"ids": saga_ids},
            )
        ).scalar_one()
        # The most instructive compensated saga failed last: the most steps to undo.
        examples = await conn.execute(
            text(
                "SELECT DISTINCT ON (s.status) s.status, s.id FROM sagaline.saga_instance s "
                "WHERE s.id = ANY(:ids) ORDER BY s.status, "
                "(SELECT count(*) FROM sagaline.saga_event e WHERE e.saga_id = s.id) DESC, s.id",
            ),
            {"ids": saga_ids},
        )
        result.examples = {row[0]: row[1] for row in examples}
        if "compensated" in result.examples:
            history = await conn.execute(
                text(
                    "SELECT seq, type, to_status, step, payload, at FROM sagaline.saga_event "
                    "WHERE saga_id = :id ORDER BY seq",
                ),
                {"id": result.examples["compensated"]},
            )
            result.compensated_history = [dict(r) for r in history.mappings()]
