"""Publishing a transaction's outbox rows from memory right after its commit, and deleting them in batches.

The rows are already durable, so this is only the fast path: a row this publisher does not get out (the
process died, the broker refused) stays in the outbox, and the relay (``OutboxRelay``) publishes it once it
is older than the grace period. Either way a row may go out twice; the consumers' inboxes drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator import telemetry
from orchestrator.messaging._codec import body_bytes, kafka_headers
from orchestrator.messaging._driver import driver_connection
from orchestrator.messaging._store import Written
from orchestrator.transient import backoff_forever

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Row:
    """An outbox row as the relay reads it, from memory; ``created_at`` (the commit) times the relay delay."""

    topic: str
    key: str | None
    headers: Mapping[str, str]
    payload: Mapping[str, Any]
    created_at: datetime


class InlinePublisher:
    """``publish`` queues a committed transaction's rows; one task sends them in commit order (whatever
    queued while a round was in flight goes out together in the next), another deletes published rows a
    batch at a time, so publishing costs no read of the outbox and no commit per row."""

    def __init__(
        self, engine: AsyncEngine, table: Table, producer: AIOKafkaProducer, *, delete_interval_s: float = 0.2
    ) -> None:
        self._engine = engine
        self._delete_sql = f"DELETE FROM {table.fullname} WHERE id = ANY($1::bigint[])"  # noqa: S608 - our table
        self._producer = producer
        self._delete_interval_s = delete_interval_s
        self._queued: list[tuple[Written, datetime]] = []
        self._queued_event = asyncio.Event()
        self._published_ids: list[int] = []
        self._published_event = asyncio.Event()
        self.published = 0

    def publish(self, written: Written) -> None:
        if written.ids:
            self._queued.append((written, datetime.now(UTC)))
            self._queued_event.set()

    def pending_ids(self) -> list[int]:
        """Rows this publisher has queued or sent and not yet deleted: the relay leaves them alone."""
        return [row_id for written, _ in self._queued for row_id in written.ids] + self._published_ids

    async def run(self) -> None:
        deleter = asyncio.create_task(self._delete_forever(), name="outbox-delete")
        try:
            while True:
                await self._queued_event.wait()
                await self._send_queued()
        finally:
            deleter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deleter

    async def drain(self) -> None:
        """Send what is queued and delete what was sent (on shutdown)."""
        await self._send_queued()
        await self._delete_published()

    async def _send_queued(self) -> None:
        self._queued_event.clear()
        batch, self._queued = self._queued, []
        if not batch:
            return
        rows = [
            _Row(r.topic, r.key, r.headers, r.payload, created_at=committed)
            for written, committed in batch
            for r in written.records
        ]
        try:
            await send_rows(self._producer, rows)
        except Exception as exc:  # the rows stay in the outbox for the relay
            log.warning("publishing %d outbox rows failed (%r); the relay will send them", len(rows), exc)
            return
        self.published += len(rows)
        self._published_ids += [row_id for written, _ in batch for row_id in written.ids]
        self._published_event.set()

    async def _delete_forever(self) -> None:
        while True:
            await self._published_event.wait()
            await asyncio.sleep(self._delete_interval_s)  # let a few rounds' rows share one DELETE
            await backoff_forever(self._delete_published, what="outbox delete")

    async def _delete_published(self) -> None:
        self._published_event.clear()
        ids = list(self._published_ids)
        if not ids:
            return
        try:
            # One statement is its own transaction: one round trip instead of BEGIN, DELETE, COMMIT.
            async with self._engine.connect() as conn:
                await (await driver_connection(conn, begin=False)).execute(self._delete_sql, ids)
        except BaseException:
            self._published_event.set()
            raise
        del self._published_ids[: len(ids)]


async def send_rows(producer: AIOKafkaProducer, rows: Sequence[Any]) -> None:
    """Send rows (``topic``, ``key``, ``headers``, ``payload``) and wait for every acknowledgement."""
    with telemetry.publishing(rows) as outgoing:  # a producer span per row, continuing its stored trace
        futures = [
            await producer.send(
                row.topic,
                value=body_bytes(row.payload),
                key=row.key.encode("utf-8") if row.key is not None else None,
                headers=kafka_headers(headers),
            )
            for row, headers in zip(rows, outgoing, strict=True)
        ]
        await asyncio.gather(*futures)
