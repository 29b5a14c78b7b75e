"""The outbox relay: publish committed outbox rows to Kafka, then delete them. At-least-once.

Rows their writer publishes itself (``InlinePublisher``) are the relay's only once they are older than the
grace period: the writer died, or the broker refused them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy import ARRAY, BigInteger, Table, all_, any_, bindparam, delete, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.messaging._inline import send_rows
from orchestrator.messaging._store import notify_channel
from orchestrator.transient import backoff_forever

log = logging.getLogger(__name__)


class OutboxRelay:
    """Woken by ``LISTEN/NOTIFY`` when a process without an inline publisher commits rows (an operator's
    verb, say), and by ``wake``; polls as a fallback, which is how rows an inline publisher did not get out
    leave. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several relays can run."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        producer: AIOKafkaProducer,
        *,
        dsn: str,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        grace_s: float = 5.0,
        in_flight: Callable[[], list[int]] = list,
    ) -> None:
        self._engine = engine
        self._table = table
        self._producer = producer
        self._dsn = dsn
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._grace = timedelta(seconds=grace_s)
        self._in_flight = in_flight
        self._wakeup = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        self._wakeup.set()

    async def publish_once(self) -> int:
        """Publish one batch; returns how many rows went out."""
        table = self._table
        not_in_flight = table.c.id != all_(bindparam("in_flight", type_=ARRAY(BigInteger)))
        unattended = or_(~table.c.inline_publish, table.c.created_at < func.now() - literal(self._grace))
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(table.c.id, table.c.topic, table.c.key, table.c.headers, table.c.payload, table.c.created_at)
                    .where(unattended & not_in_flight)
                    .order_by(table.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True),
                    {"in_flight": self._in_flight()},
                )
            ).all()
            if not rows:
                return 0
            await send_rows(self._producer, rows)
            await conn.execute(
                delete(table).where(table.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))),
                {"ids": [row.id for row in rows]},
            )
        self.published += len(rows)
        return len(rows)

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        try:
            while True:
                self._wakeup.clear()
                sent = await backoff_forever(self.publish_once, what="outbox relay")
                if sent >= self._batch_size:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_interval_s)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        assert self._table.schema is not None
        channel = notify_channel(self._table.schema)
        while True:
            conn: Any = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn)
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(channel, lambda *_args: self.wake())
                await lost.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                log.info("LISTEN %s unavailable (%s); polling meanwhile", channel, exc)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(1.0)
