"""Reading a topic from the beginning without a consumer group (DLQ inspection, tests, audits)."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


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
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public way to refresh
        known = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, p) for p in sorted(known) if partition is None or p == partition]
        if not partitions:
            return []
        consumer.assign(partitions)
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
    finally:
        await consumer.stop()
    return records
