"""Helpers for integration tests: reading topics, waiting on conditions (never on sleeps)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator.settings import Settings

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], *, timeout_s: float = 60, interval_s: float = 0.2) -> T:
    """Retry ``check`` until it returns without AssertionError; re-raise the last failure at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval_s)


async def read_topic(settings: Settings, topic: str, *, min_records: int = 1, timeout_s: float = 30) -> list[Any]:
    """Every record on ``topic`` from the beginning (no consumer group, nothing committed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
        if not partitions:
            await consumer.client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        idle_rounds = 0
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            fetched = [r for recs in batch.values() for r in recs]
            records += fetched
            idle_rounds = 0 if fetched else idle_rounds + 1
            if len(records) >= min_records and idle_rounds >= 3:
                break
    finally:
        await consumer.stop()
    return records
