"""The outbox gauges: how many rows wait for the relay, and how old the oldest one is."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.telemetry._state import STATE

log = logging.getLogger(__name__)

MONITOR_INTERVAL_S = 2.0


def background_tasks(db: AsyncEngine, outbox: Table) -> list[Coroutine[Any, Any, None]]:
    """What a service runs alongside its consumer: the outbox monitor when metrics are on, else nothing."""
    return [] if STATE.metrics is None else [monitor_outbox(db, outbox)]


async def sample_outbox(db: AsyncEngine, outbox: Table) -> tuple[int, float]:
    """Rows in the outbox and the age in seconds of the oldest (by the database's clock)."""
    age = func.extract("epoch", func.clock_timestamp() - func.min(outbox.c.created_at))
    async with db.connect() as conn:
        rows, oldest = (await conn.execute(select(func.count(), age).select_from(outbox))).one()
    return int(rows), float(oldest or 0.0)


async def monitor_outbox(db: AsyncEngine, outbox: Table, *, interval_s: float = MONITOR_INTERVAL_S) -> None:
    name = outbox.schema or outbox.name
    while True:
        instruments = STATE.metrics
        if instruments is not None:
            try:
                rows, lag = await sample_outbox(db, outbox)
            except (OSError, SQLAlchemyError) as exc:
                log.debug("outbox sample failed: %s", exc)
            else:
                instruments.outbox_backlog_rows[name] = rows
                instruments.relay_lag_s[name] = lag
        await asyncio.sleep(interval_s)
