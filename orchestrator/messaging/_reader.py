"""Reading a topic from the beginning without a consumer group (DLQ inspection, tests, audits)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator.messaging._no_auto_create import forbid_topic_auto_creation

FETCH_WAIT_MS = 50


@asynccontextmanager
async def assigned_reader(
    bootstrap_servers: str, topic: str, *, partition: int | None = None
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A started consumer outside any group, assigned the topic's partitions (all, or one) as the broker knows them
    now, and those partitions (none for a missing topic). It commits nothing; the caller seeks."""
    forbid_topic_auto_creation()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_WAIT_MS,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public way to refresh
        known = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, p) for p in sorted(known) if partition is None or p == partition]
        if partitions:
            consumer.assign(partitions)
        yield consumer, partitions
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    partition: int | None = None,
    start_offset: int | None = None,
    max_records: int | None = None,
    timeout_s: float = 10,
) -> list[Any]:
    """Records of ``topic`` (all partitions, or one) from the beginning or ``start_offset``.
    Stops after three empty fetches in a row, ``max_records``, or ``timeout_s``. Commits nothing."""
    records: list[Any] = []
    async with assigned_reader(bootstrap_servers, topic, partition=partition) as (consumer, partitions):
        if not partitions:
            return []
        for tp in partitions:
            if start_offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start_offset)
        deadline = time.monotonic() + timeout_s
        idle = 0
        while time.monotonic() < deadline and idle < 3:
            batch = await consumer.getmany(timeout_ms=200)
            fetched = [r for recs in batch.values() for r in recs]
            records += fetched
            idle = 0 if fetched else idle + 1
            if max_records is not None and len(records) >= max_records:
                break
    return records
