"""A transaction's records go to the broker in as few produce requests as the batch size allows, over a real
broker: aiokafka's default batch (16 KB) made each send wait, once a partition's batch was full, for that batch
to go out, so 100 commands of 1 KB went out in seven round trips, one after the other."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka.protocol.produce import ProduceRequest

from orchestrator.messaging import OutboxRecord, ensure_topics, make_producer, read_topic
from orchestrator.messaging._inline import send_rows
from orchestrator.settings import Settings
from tests.support.infra import Infra

pytestmark = pytest.mark.integration

PADDED = {"sagaline-type": "Padded"}


async def _produce_requests(infra: Infra, batch_bytes: int | None) -> tuple[int, list[Any]]:
    """Produce requests sent for 100 records of ~1 KB to one partition, and the records read back."""
    options = {"producer_batch_bytes": batch_bytes} if batch_bytes is not None else {}
    settings = Settings(
        kafka_bootstrap_servers=infra.bootstrap_servers, topic_prefix=f"batch{uuid.uuid4().hex[:6]}.", **options
    )
    topic = settings.topics.events
    await ensure_topics(settings, [topic])
    producer = make_producer(settings)
    await producer.start()
    requests = 0
    send = producer.client.send

    async def counting(node_id: int, request: Any, **kwargs: Any) -> Any:
        nonlocal requests
        requests += isinstance(request, ProduceRequest)
        return await send(node_id, request, **kwargs)

    producer.client.send = counting  # type: ignore[method-assign]
    try:
        rows = [
            OutboxRecord(topic=topic, key="one-saga", headers=PADDED, payload={"n": n, "pad": "x" * 1000})
            for n in range(100)
        ]
        await send_rows(producer, rows)
    finally:
        await producer.stop()
    return requests, await read_topic(infra.bootstrap_servers, topic, max_records=100)


async def test_a_round_of_records_for_one_partition_is_one_produce_request(infra: Infra) -> None:
    requests, records = await _produce_requests(infra, 524_288)

    assert requests == 1
    assert [json.loads(r.value)["n"] for r in records] == list(range(100))


async def test_a_smaller_batch_size_splits_the_round(infra: Infra) -> None:
    requests, records = await _produce_requests(infra, 16_384)

    assert requests >= 7
    assert len(records) == 100
