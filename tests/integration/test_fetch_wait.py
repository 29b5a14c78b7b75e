"""Over the real broker: a service consumer left idle asks the broker for records a few times a second instead
of a hundred (``SAGALINE_FETCH_IDLE_MAX_WAIT_MS``), and a record that then arrives is still handled, after which
the consumer asks with the short wait again. While every CPU of the machine is kept busy for real, it asks with
the saturated wait (``SAGALINE_FETCH_SATURATED_WAIT_MS``), tries the short one at the quarter minute and goes
back to the saturated one (the short wait does not free the CPUs), and asks with the short one once they are
free again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest

from orchestrator.messaging import ensure_topics, make_broker, make_producer, subscribe
from orchestrator.messaging._fetch_wait import TRY_SHORT_EVERY_S, TRY_SHORT_FOR_S
from orchestrator.settings import Settings
from tests.integration.helpers import until
from tests.support.commands import create_order_record, recording_consumer
from tests.support.infra import Infra

pytestmark = pytest.mark.integration

BUSY_MS, IDLE_MS, AFTER_MS, SATURATED_MS = 10, 400, 500, 200


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


async def _clear_of_tries_for(seconds: float) -> None:
    """Wait until the next ``seconds`` hold no try at the short wait (every service's, on the wall clock)."""
    into = time.time() % TRY_SHORT_EVERY_S
    if into < TRY_SHORT_FOR_S + 0.3 or into + seconds > TRY_SHORT_EVERY_S:
        await asyncio.sleep((TRY_SHORT_FOR_S + 0.3 - into) % TRY_SHORT_EVERY_S)


async def _until_the_next_try() -> None:
    await asyncio.sleep(TRY_SHORT_EVERY_S - time.time() % TRY_SHORT_EVERY_S + 0.1)


def _settings(infra: Infra, topic_prefix: str, **waits: int) -> Settings:
    timings: dict[str, Any] = {k.removeprefix("SAGALINE_").lower(): v for k, v in infra.broker_env.items()}
    return Settings(
        **timings | {"fetch_max_wait_ms": BUSY_MS, "fetch_idle_after_ms": AFTER_MS} | waits,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=f"{topic_prefix}{uuid.uuid4().hex[:8]}.",  # a topic of its own for each test
    )


class _Service:
    """A service consumer on the real broker recording the message ids it handles, and a producer to send it some."""

    def __init__(self, settings: Settings, subscriber: Any, producer: Any, handled: list[str]) -> None:
        self.settings, self.subscriber, self.producer, self.handled = settings, subscriber, producer, handled

    @property
    def wait_ms(self) -> int:
        return int(self.subscriber.consumer._fetcher._fetch_max_wait_ms)

    async def send(self, message_id: str) -> None:
        await self.producer.send_and_wait(self.settings.topics.commands("order"), **create_order_record(message_id))


@asynccontextmanager
async def _service(settings: Settings, group: str) -> AsyncIterator[_Service]:
    topic = settings.topics.commands("order")
    await ensure_topics(settings, [topic, settings.topics.dlq])
    handled: list[str] = []
    producer = make_producer(settings)
    broker = make_broker(settings)
    consumer = recording_consumer(producer, settings, "wait", handled.append)
    subscriber, _ = subscribe(broker, settings, topics=[topic], group=group, consumer=consumer)
    try:
        await producer.start()
        await broker.start()
        await until(lambda: bool(subscriber.consumer.assignment()), timeout_s=30)
        yield _Service(settings, subscriber, producer, handled)
    finally:
        await broker.stop()
        await producer.stop()


@pytest.mark.parametrize("idle_wait", [True, False], ids=["idle-wait", "fixed-wait"])
async def test_an_idle_consumer_asks_seldom_and_still_gets_the_next_record(
    infra: Infra, topic_prefix: str, idle_wait: bool
) -> None:
    settings = _settings(
        infra, topic_prefix, fetch_idle_max_wait_ms=IDLE_MS if idle_wait else 0, fetch_saturated_wait_ms=0
    )
    async with _service(settings, f"{topic_prefix}idle") as service:
        fetches = _FetchCounter(service.subscriber.consumer)
        await asyncio.sleep(AFTER_MS / 1000 + 0.5)  # past the quiet spell, and the last short fetch answered
        idle_fetches = await fetches.during(2.0)
        if idle_wait:
            assert service.wait_ms == IDLE_MS
            assert idle_fetches <= 2 * 1000 / IDLE_MS + 2, f"{idle_fetches} fetches in 2 s while idle"
        else:
            assert service.wait_ms == BUSY_MS
            assert idle_fetches >= 20, f"only {idle_fetches} fetches in 2 s at a {BUSY_MS} ms wait"

        await service.send("after-the-quiet")
        await until(lambda: service.handled == ["after-the-quiet"], timeout_s=10)
        await until(lambda: service.wait_ms == BUSY_MS, timeout_s=1)


@contextmanager
def _every_cpu_busy() -> Iterator[None]:
    """One busy loop per CPU, in processes of their own: the machine saturated for real."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


async def test_a_consumer_on_a_saturated_machine_asks_with_the_longer_wait_until_its_cpus_are_free(
    infra: Infra, topic_prefix: str
) -> None:
    settings = _settings(infra, topic_prefix, fetch_idle_max_wait_ms=0, fetch_saturated_wait_ms=SATURATED_MS)
    async with _service(settings, f"{topic_prefix}saturated") as service:
        await asyncio.sleep(1.5)
        assert service.wait_ms == BUSY_MS  # an idle test machine is not saturated
        fetches = _FetchCounter(service.subscriber.consumer)
        with _every_cpu_busy():
            await until(lambda: service.wait_ms == SATURATED_MS, timeout_s=15)
            await _clear_of_tries_for(2.5)
            await asyncio.sleep(SATURATED_MS / 1000)  # the last short fetch answered
            saturated_fetches = await fetches.during(2.0)
            await service.send("while-saturated")
            await until(lambda: service.handled == ["while-saturated"], timeout_s=10)

            await _until_the_next_try()
            await until(lambda: service.wait_ms == BUSY_MS, timeout_s=TRY_SHORT_FOR_S - 0.5)  # trying the short one
            await until(lambda: service.wait_ms == SATURATED_MS, timeout_s=TRY_SHORT_FOR_S + 1.5)
        assert saturated_fetches <= 2 * 1000 / SATURATED_MS + 3, f"{saturated_fetches} fetches in 2 s"
        await until(lambda: service.wait_ms == BUSY_MS, timeout_s=15)
