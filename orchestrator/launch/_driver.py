"""Sending a batch of start commands and watching the sagas reach their terminal states."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Envelope, PlaceOrder
from orchestrator.messaging import body_bytes, encode_body, kafka_headers, make_producer
from orchestrator.settings import Settings

TERMINAL = ("completed", "compensated", "failed")
START_ID_NAMESPACE = uuid.UUID("5d0c8c3e-2a43-4f9e-8b8a-7f6c1e2d3b4a")


@dataclass
class Progress:
    total: int
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def terminal(self) -> int:
        return sum(self.by_status.get(s, 0) for s in TERMINAL)

    @property
    def in_flight(self) -> int:
        return self.total - self.terminal


async def send_start(producer: AIOKafkaProducer, settings: Settings, order: PlaceOrder) -> asyncio.Future[Any]:
    """Enqueue one start command (with an envelope); returns the future of its acknowledgement."""
    saga_id = order.saga_id or order.order_id
    # Deterministic per saga: sending the same order again is deduplicated by the orchestrator's inbox.
    message_id = str(uuid.uuid5(START_ID_NAMESPACE, saga_id))
    envelope = Envelope(message_id=message_id, type=order.type_name(), saga_id=saga_id)
    acked: asyncio.Future[Any] = await producer.send(
        settings.topics.start,
        value=body_bytes(encode_body(order)),
        key=saga_id.encode(),
        headers=kafka_headers(envelope.to_headers()),
    )
    return acked


async def send_orders(settings: Settings, orders: Sequence[PlaceOrder]) -> dict[str, datetime]:
    """Publish every start command (with an envelope); returns when each was sent, by saga id."""
    producer = make_producer(settings)
    await producer.start()
    sent: dict[str, datetime] = {}
    try:
        for order in orders:
            await send_start(producer, settings, order)
            sent[order.saga_id or order.order_id] = datetime.now().astimezone()
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def missing_sagas(engine: AsyncEngine, saga_ids: Sequence[str]) -> list[str]:
    """Saga ids with no saga row: their start command never reached the orchestrator."""
    async with engine.connect() as conn:
        found = {
            row[0]
            for row in await conn.execute(
                text("SELECT id FROM sagaline.saga_instance WHERE id = ANY(:ids)"),
                {"ids": list(saga_ids)},
            )
        }
    return [s for s in saga_ids if s not in found]


async def status_counts(engine: AsyncEngine, saga_ids: Sequence[str]) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT status, count(*) FROM sagaline.saga_instance WHERE id = ANY(:ids) GROUP BY status"),
                {"ids": list(saga_ids)},
            )
        ).all()
    return {row[0]: int(row[1]) for row in rows}


async def wait_terminal(
    engine: AsyncEngine,
    saga_ids: Sequence[str],
    *,
    timeout_s: float,
    on_progress: Callable[[Progress], None] = lambda _p: None,
    poll_s: float = 0.25,
) -> Progress:
    """Poll until every saga is terminal or the timeout passes; returns the last progress seen."""
    deadline = time.monotonic() + timeout_s
    progress = Progress(total=len(saga_ids))
    while True:
        progress = Progress(total=len(saga_ids), by_status=await status_counts(engine, saga_ids))
        on_progress(progress)
        if progress.terminal >= progress.total or time.monotonic() > deadline:
            return progress
        await asyncio.sleep(poll_s)


async def latencies_ms(engine: AsyncEngine, sent_at: dict[str, datetime]) -> list[float]:
    """From the moment the start command was sent to the saga's last state change."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, updated_at FROM sagaline.saga_instance "
                    "WHERE id = ANY(:ids) AND status IN ('completed', 'compensated', 'failed')",
                ),
                {"ids": list(sent_at)},
            )
        ).all()
    return sorted((row.updated_at - sent_at[row.id]).total_seconds() * 1000 for row in rows)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]
