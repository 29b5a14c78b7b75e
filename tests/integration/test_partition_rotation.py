"""Over the real broker, with partitions taken in turn (``SAGALINE_PARTITION_ROTATION_S``): the producers' records
of a few seconds spread over the turns' partitions and all reach the consumer; between sweeps the consumer fetches
only the turn's partition; a record written to any other partition (a late retry, a backlog) is still handled; and
the events topic keeps one partition, so a saga's lifecycle events stay in order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import TopicPartition

from orchestrator.messaging import ensure_topics, make_broker, make_producer, subscribe
from orchestrator.messaging._rotation import SWEEP_EVERY_S, SWEEP_S
from orchestrator.settings import Settings
from tests.integration.helpers import until
from tests.support.commands import create_order_record, recording_consumer
from tests.support.infra import Infra

pytestmark = pytest.mark.integration

PARTITIONS = 8


def _settings(infra: Infra, topic_prefix: str) -> Settings:
    timings: dict[str, Any] = {k.removeprefix("SAGALINE_").lower(): v for k, v in infra.broker_env.items()}
    return Settings(
        **timings | {"topic_partitions": PARTITIONS, "partition_rotation_s": 1.0},
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=f"{topic_prefix}{uuid.uuid4().hex[:8]}.",
    )


@asynccontextmanager
async def _service(settings: Settings, group: str) -> AsyncIterator[tuple[Any, Any, list[str]]]:
    topic = settings.topics.commands("order")
    await ensure_topics(settings, [topic, settings.topics.dlq, settings.topics.events])
    handled: list[str] = []
    producer = make_producer(settings)
    broker = make_broker(settings)
    subscriber, _ = subscribe(
        broker,
        settings,
        topics=[topic],
        group=group,
        consumer=recording_consumer(producer, settings, "rot", handled.append),
    )
    try:
        await producer.start()
        await broker.start()
        await until(lambda: len(subscriber.consumer.assignment()) == PARTITIONS, timeout_s=30)
        yield subscriber.consumer, producer, handled
    finally:
        await broker.stop()
        await producer.stop()


async def test_records_of_every_turn_and_of_any_partition_reach_the_consumer(infra: Infra, topic_prefix: str) -> None:
    settings = _settings(infra, topic_prefix)
    topic = settings.topics.commands("order")
    async with _service(settings, f"{topic_prefix}rotation") as (consumer, producer, handled):
        partitions: set[int] = set()
        sent: list[str] = []
        began = time.monotonic()
        while time.monotonic() - began < 3.2:  # across three changes of turn
            message_id = f"turn-{len(sent)}"
            meta = await producer.send_and_wait(topic, **create_order_record(message_id))
            partitions.add(meta.partition)
            sent.append(message_id)
            await asyncio.sleep(0.02)
        assert len(partitions) >= 3, f"records went to partitions {partitions} only"
        await until(lambda: set(handled) >= set(sent), timeout_s=10)

        # Between sweeps a fetch asks for the turn's partition (and, near a change, the next or previous one).
        seen_paused: list[int] = []
        for _ in range(20):
            seen_paused.append(len(consumer.paused()))
            await asyncio.sleep(0.1)
        assert max(seen_paused) >= PARTITIONS - 2, f"paused partitions over 2 s: {seen_paused}"

        # A record written to each partition, whatever the turn, is handled within a sweep or two.
        strays = [f"stray-{p}" for p in range(PARTITIONS)]
        for p, message_id in enumerate(strays):
            await producer.send_and_wait(topic, partition=p, **create_order_record(message_id))
        await until(lambda: set(handled) >= set(strays), timeout_s=2 * SWEEP_EVERY_S + SWEEP_S + 3)
        assert all(TopicPartition(topic, p) in consumer.assignment() for p in range(PARTITIONS))


async def test_the_events_topic_keeps_one_partition_when_partitions_rotate(infra: Infra, topic_prefix: str) -> None:
    settings = _settings(infra, topic_prefix)
    await ensure_topics(settings, [settings.topics.events, settings.topics.commands("order")])
    producer = make_producer(settings)
    await producer.start()
    try:
        assert len(await producer.partitions_for(settings.topics.events)) == 1
        assert len(await producer.partitions_for(settings.topics.commands("order"))) == PARTITIONS
    finally:
        await producer.stop()
