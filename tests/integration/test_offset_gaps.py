"""Concurrent producers to one partition, and a service consumer following its end over the real broker: every
record is handled. The embedded broker can hand such a consumer records past ones not yet readable; with
``SAGALINE_REFETCH_GAPS`` (on for it) the consumer goes back for them instead of skipping them."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from orchestrator.messaging import ensure_topics, make_broker, make_producer, subscribe
from orchestrator.settings import Settings
from tests.support.commands import create_order_record, recording_consumer
from tests.support.infra import Infra

pytestmark = pytest.mark.integration

PRODUCERS, RECORDS_EACH = 5, 2400


async def _produce(producer: AIOKafkaProducer, topic: str, other: str, message_ids: list[str]) -> None:
    """Requests of 1 to 9 records, each with one for another topic too (as a service's publisher sends)."""
    rng = random.Random(message_ids[0])
    start = 0
    while start < len(message_ids):
        size = rng.randint(1, 9)
        acks = [await producer.send(other, b"{}")]
        acks += [await producer.send(topic, **create_order_record(m)) for m in message_ids[start : start + size]]
        await asyncio.gather(*acks)
        start += size
        await asyncio.sleep(rng.random() * 0.003)


async def test_a_following_consumer_handles_every_record_of_concurrent_producers(
    infra: Infra, topic_prefix: str
) -> None:
    timings: dict[str, Any] = {k.removeprefix("SAGALINE_").lower(): v for k, v in infra.broker_env.items()}
    settings = Settings(**timings, kafka_bootstrap_servers=infra.bootstrap_servers, topic_prefix=f"{topic_prefix}gaps.")
    topic, other = settings.topics.commands("order"), settings.topics.commands("payment")
    await ensure_topics(settings, [topic, other, settings.topics.dlq])
    handled: set[str] = set()
    dlq_producer = make_producer(settings)
    producers = [make_producer(settings) for _ in range(PRODUCERS)]
    broker = make_broker(settings)
    consumer = recording_consumer(dlq_producer, settings, "gaps", handled.add)
    subscribe(broker, settings, topics=[topic], group=f"{topic_prefix}gaps", consumer=consumer)
    sent = [[str(uuid.uuid4()) for _ in range(RECORDS_EACH)] for _ in range(PRODUCERS)]
    try:
        for producer in (dlq_producer, *producers):
            await producer.start()
        await broker.start()
        await asyncio.sleep(2)  # the group join
        await asyncio.gather(*(_produce(p, topic, other, ids) for p, ids in zip(producers, sent, strict=True)))
        expected = {message_id for ids in sent for message_id in ids}
        for _ in range(300):
            if expected <= handled:
                break
            await asyncio.sleep(0.1)
        missing = expected - handled
        assert not missing, f"{len(missing)} of {len(expected)} records were skipped"
    finally:
        await broker.stop()
        for producer in (dlq_producer, *producers):
            await producer.stop()
