"""The chaos harness: SIGKILL a random service every few seconds and restart it; restart the broker
once and Postgres once. Used by `sagaline demo --chaos` and the slow chaos test."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import PlaceOrder
from orchestrator.launch._driver import missing_sagas, send_orders
from orchestrator.launch._stack import Stack
from orchestrator.transient import backoff_forever

log = logging.getLogger(__name__)

_DUPLICATE_LINE = re.compile(rb"duplicate (message|command) .* suppressed|answered from its stored reply")


@dataclass
class ChaosReport:
    kills: int = 0
    restarts: int = 0
    broker_restarts: int = 0
    postgres_restarts: int = 0
    timeline: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "kills": self.kills,
            "restarts": self.restarts,
            "broker_restarts": self.broker_restarts,
            "postgres_restarts": self.postgres_restarts,
        }


class ChaosMonkey:
    """Runs until ``stop`` is set. Broker and Postgres restarts happen only when the stack owns them
    (embedded); a real Kafka or Postgres is never touched."""

    def __init__(
        self,
        stack: Stack,
        *,
        interval_s: float = 3.0,
        seed: int | None = None,
        restart_broker_after_s: float | None = 8.0,
        restart_postgres_after_s: float | None = 16.0,
        on_event: Callable[[str], None] = lambda _event: None,
    ) -> None:
        self._stack = stack
        self._interval_s = interval_s
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
        self._broker_at = restart_broker_after_s
        self._postgres_at = restart_postgres_after_s
        self._on_event = on_event
        self.report = ChaosReport()

    def _note(self, event: str) -> None:
        self.report.timeline.append(event)
        self._on_event(event)
        log.info("chaos: %s", event)

    async def run(self, stop: asyncio.Event) -> ChaosReport:
        assert self._stack.cluster is not None, "start the stack's services first"
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
            if stop.is_set():
                break
            elapsed = loop.time() - started
            if self._broker_at is not None and elapsed >= self._broker_at and self._stack.broker is not None:
                self._broker_at = None
                await asyncio.to_thread(self._stack.broker.restart)
                self.report.broker_restarts += 1
                self._note("restarted the broker (all topics and messages lost)")
                continue
            if self._postgres_at is not None and elapsed >= self._postgres_at and self._stack.postgres is not None:
                self._postgres_at = None
                await asyncio.to_thread(self._stack.postgres.restart)
                self.report.postgres_restarts += 1
                self._note("restarted Postgres (immediate shutdown: every connection dropped)")
                continue
            await self._kill_one()
        await self._revive_all()
        return self.report

    async def _kill_one(self) -> None:
        assert self._stack.cluster is not None
        name = self._random.choice(sorted(self._stack.cluster.services))
        service = self._stack.cluster.services[name]
        service.kill()
        self.report.kills += 1
        await asyncio.sleep(self._random.uniform(0.1, 1.0))
        service.start()
        self.report.restarts += 1
        self._note(f"SIGKILLed and restarted {name}")

    async def _revive_all(self) -> None:
        assert self._stack.cluster is not None
        for service in self._stack.cluster.services.values():
            if not service.alive:
                service.start()
                self.report.restarts += 1
        for service in self._stack.cluster.services.values():
            await asyncio.to_thread(service.wait_ready)


def duplicates_suppressed(log_dir: Path) -> int:
    """Duplicates the services' inboxes suppressed, as they logged them (SIGKILL leaves no other record)."""
    return sum(len(_DUPLICATE_LINE.findall(path.read_bytes())) for path in log_dir.glob("*.log"))


@dataclass
class ChaosRun:
    report: ChaosReport
    sent_at: dict[str, datetime]
    starts_resent: int
    duplicates_suppressed: int
    resends_at_deadline: int


async def run_with_chaos(  # noqa: PLR0913
    stack: Stack,
    engine: AsyncEngine,
    orders: list[PlaceOrder],
    *,
    chunk: int = 50,
    chunk_interval_s: float = 0.25,
    min_chaos_s: float = 30.0,
    interval_s: float = 3.0,
    seed: int | None = None,
    on_event: Callable[[str], None] = lambda _event: None,
) -> ChaosRun:
    """Send ``orders`` gradually while the monkey works, for at least ``min_chaos_s`` and until all are sent.
    The embedded broker forgets everything on restart, so a client would send again the start commands
    it sees no saga for: that is done here with the same message ids (deduplicated if they did arrive)."""
    stop = asyncio.Event()
    monkey = ChaosMonkey(stack, interval_s=interval_s, seed=seed, on_event=on_event)
    chaos = asyncio.create_task(monkey.run(stop))
    sent_at: dict[str, datetime] = {}
    began = asyncio.get_running_loop().time()
    try:
        for start in range(0, len(orders), chunk):
            sent_at |= await backoff_forever(
                lambda start=start: send_orders(stack.settings, orders[start : start + chunk]),  # type: ignore[misc]
                what="sending orders",
            )
            await asyncio.sleep(chunk_interval_s)
        await asyncio.sleep(max(0.0, min_chaos_s - (asyncio.get_running_loop().time() - began)))
    finally:
        stop.set()
        report = await chaos
    missing = await backoff_forever(lambda: missing_sagas(engine, list(sent_at)), what="looking for lost starts")
    if missing:
        by_id = {o.saga_id or o.order_id: o for o in orders}
        await send_orders(stack.settings, [by_id[s] for s in missing])
        on_event(f"re-sent {len(missing)} start commands the restarted broker had lost")
    assert stack.cluster is not None
    resends = await backoff_forever(lambda: _count_events(engine, "timed_out"), what="counting resends")
    return ChaosRun(
        report=report,
        sent_at=sent_at,
        starts_resent=len(missing),
        duplicates_suppressed=duplicates_suppressed(stack.cluster.services["orchestrator"].log_dir),
        resends_at_deadline=resends,
    )


async def _count_events(engine: AsyncEngine, event_type: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM sagaline.saga_event WHERE type = :t"), {"t": event_type})
    return int(count or 0)
