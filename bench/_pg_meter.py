"""Postgres figures: commits so far (``pg_stat_database.xact_commit``) and the outbox backlog of all services."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Self

from bench import _readonly
from orchestrator.persistence import outbox
from participants.registry import PARTICIPANTS

OUTBOXES = (outbox, *(p.outbox for p in PARTICIPANTS.values()))
_BACKLOG = "SELECT " + " + ".join(f"(SELECT count(*) FROM {t.schema}.{t.name})" for t in OUTBOXES)
_COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
STATS_FLUSH_S = 1.2  # backends publish their counters at most once a second, and when they go idle


async def commits(conn: Any) -> int:
    return int(await _readonly.fetchval(conn, _COMMITS))


async def backlog(conn: Any) -> int:
    """Outbox rows written and not yet published, over the five services."""
    return int(await _readonly.fetchval(conn, _BACKLOG))


async def drained(conn: Any, *, timeout_s: float = 30) -> None:
    """Until every outbox is empty (the relays caught up), then long enough for the statistics to be published."""
    deadline = time.monotonic() + timeout_s
    while await backlog(conn) and time.monotonic() < deadline:  # noqa: ASYNC110 - polling another process's rows
        await asyncio.sleep(0.05)
    await asyncio.sleep(STATS_FLUSH_S)


class BacklogSampler:
    """The largest outbox backlog seen, sampled every ``interval_s`` while the block runs."""

    def __init__(self, conn: Any, *, interval_s: float = 0.1) -> None:
        self._conn = conn
        self._interval_s = interval_s
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._sample(), name="outbox-backlog")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, await backlog(self._conn))
            await asyncio.sleep(self._interval_s)
