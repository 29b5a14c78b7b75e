"""Postgres figures: commits so far (``pg_stat_database.xact_commit``) and the outbox backlog of all services."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import _readonly
from orchestrator.persistence import outbox
from participants.registry import PARTICIPANTS

OUTBOXES = (outbox, *(p.outbox for p in PARTICIPANTS.values()))
_BACKLOG = "SELECT " + " + ".join(f"(SELECT count(*) FROM {t.schema}.{t.name})" for t in OUTBOXES)
_COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
STATS_FLUSH_S = 1.2  # backends publish their counters at most once a second, and when they go idle


async def commits(conn: Any) -> int:
    return int(await _readonly.fetchval(conn, _COMMITS))


async def step_timeouts(conn: Any, saga_ids: list[str]) -> int:
    """Step deadlines that passed for these sagas (each re-sends its command, or compensates the saga)."""
    sql = "SELECT count(*) FROM sagaline.saga_event WHERE type = 'timed_out' AND saga_id = ANY($1::text[])"
    return int(await _readonly.fetchval(conn, sql, saga_ids))


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
    """The largest outbox backlog seen; ``sample`` it periodically."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.peak = 0

    async def sample(self) -> None:
        self.peak = max(self.peak, await backlog(self._conn))
