"""Kafka messages/s with aiokafka, configured as Sagaline's own clients are: produce pipelined (every send in
flight, the producer batching), produce one at a time (each acknowledged before the next), consume."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orchestrator.messaging import ensure_topics, make_producer
from orchestrator.settings import Settings


async def _topic(settings: Settings) -> str:
    topic = f"{settings.topic_prefix}bench.limits.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    return topic


async def _drop(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        with contextlib.suppress(Exception):  # memory is all it costs if the broker cannot delete
            await admin.delete_topics([topic])
    finally:
        await admin.close()


async def _produce(settings: Settings, topic: str, messages: int, size: int, *, pipelined: bool) -> float:
    producer = make_producer(settings)
    await producer.start()
    value = b"x" * size
    try:
        began = time.monotonic()
        if pipelined:
            acks = [await producer.send(topic, value=value, key=str(i).encode()) for i in range(messages)]
            await asyncio.gather(*acks)
        else:
            for i in range(messages):
                await (await producer.send(topic, value=value, key=str(i).encode()))
        return messages / (time.monotonic() - began)
    finally:
        await producer.stop()


async def _consume(settings: Settings, topic: str, messages: int, timeout_s: float = 60) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public way to refresh
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, began = 0, time.monotonic()
        while seen < messages and time.monotonic() - began < timeout_s:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        return seen / (time.monotonic() - began)
    finally:
        await consumer.stop()


async def messages_per_s(settings: Settings, *, messages: int, size: int, sequential: int) -> dict[str, float]:
    topic = await _topic(settings)
    try:
        produced = await _produce(settings, topic, messages, size, pipelined=True)
        consumed = await _consume(settings, topic, messages)
        one_by_one = await _produce(settings, topic, sequential, size, pipelined=False)
    finally:
        await _drop(settings, topic)
    return {
        "produce_pipelined_per_s": round(produced),
        "produce_one_at_a_time_per_s": round(one_by_one),
        "consume_per_s": round(consumed),
    }
