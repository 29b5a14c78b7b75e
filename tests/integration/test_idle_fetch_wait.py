"""Over the real broker: a service consumer left idle asks the broker for records a few times a second instead
of a hundred (``SAGALINE_FETCH_IDLE_MAX_WAIT_MS``), and a record that then arrives is still handled, after which
the consumer asks with the short wait again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from contracts import CreateOrder, Envelope
from orchestrator.messaging import (
    Consumer,
    DeadLetters,
    Incoming,
    Rejected,
    body_bytes,
    encode_body,
    ensure_topics,
    make_broker,
    make_producer,
    subscribe,
)
from orchestrator.settings import Settings
from tests.support.infra import Infra

pytestmark = pytest.mark.integration

BUSY_MS, IDLE_MS, AFTER_MS = 10, 400, 500


class _FetchCounter:
    """Counts the fetch requests a consumer's client sends."""

    def __init__(self, consumer: Any) -> None:
        self.count = 0
        client = consumer._client
        send = client.send

        async def counting(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
            if type(request).__name__.startswith("FetchRequest"):
                self.count += 1
            return await send(node_id, request, *args, **kwargs)

        client.send = counting

    async def during(self, seconds: float) -> int:
        before = self.count
        await asyncio.sleep(seconds)
        return self.count - before


async def _until(condition: Any, *, timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("idle_wait", [True, False], ids=["idle-wait", "fixed-wait"])
async def test_an_idle_consumer_asks_seldom_and_still_gets_the_next_record(
    infra: Infra, topic_prefix: str, idle_wait: bool
) -> None:
    timings: dict[str, Any] = {k.removeprefix("SAGALINE_").lower(): v for k, v in infra.broker_env.items()}
    settings = Settings(
        **timings
        | {
            "fetch_max_wait_ms": BUSY_MS,
            "fetch_idle_max_wait_ms": IDLE_MS if idle_wait else 0,
            "fetch_idle_after_ms": AFTER_MS,
        },
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=f"{topic_prefix}idle.",
    )
    topic = settings.topics.commands("order")
    await ensure_topics(settings, [topic, settings.topics.dlq])
    handled: list[str] = []

    async def record_ids(batch: Sequence[Incoming]) -> list[Rejected | None]:
        handled.extend(incoming.envelope.message_id for incoming in batch)
        return [None] * len(batch)

    producer = make_producer(settings)
    broker = make_broker(settings)
    consumer = Consumer(
        record_ids,
        DeadLetters(producer, settings.topics.dlq, "idle"),
        bare_json_topics=frozenset(),
        max_message_bytes=settings.max_message_bytes,
    )
    subscriber, _ = subscribe(broker, settings, topics=[topic], group=f"{topic_prefix}idle", consumer=consumer)
    try:
        await producer.start()
        await broker.start()
        aiokafka_consumer = subscriber.consumer
        await _until(lambda: bool(aiokafka_consumer.assignment()), timeout_s=30)
        fetches = _FetchCounter(aiokafka_consumer)
        await asyncio.sleep(AFTER_MS / 1000 + 0.5)  # past the quiet spell, and the last short fetch answered
        idle_fetches = await fetches.during(2.0)
        fetcher = aiokafka_consumer._fetcher
        if idle_wait:
            assert fetcher._fetch_max_wait_ms == IDLE_MS
            assert idle_fetches <= 2 * 1000 / IDLE_MS + 2, f"{idle_fetches} fetches in 2 s while idle"
        else:
            assert fetcher._fetch_max_wait_ms == BUSY_MS
            assert idle_fetches >= 20, f"only {idle_fetches} fetches in 2 s at a {BUSY_MS} ms wait"

        envelope = Envelope(message_id="after-the-quiet", type="CreateOrder", saga_id="s1", step="create_order")
        await producer.send_and_wait(
            topic,
            value=body_bytes(encode_body(CreateOrder(order_id="o1", customer_id="c", amount_cents=1))),
            key=b"s1",
            headers=[(k, v.encode()) for k, v in envelope.to_headers().items()],
        )
        await _until(lambda: handled == ["after-the-quiet"], timeout_s=10)
        await _until(lambda: fetcher._fetch_max_wait_ms == BUSY_MS, timeout_s=1)
    finally:
        await broker.stop()
        await producer.stop()
