"""The batch subscriber hands fetched records to the handler as soon as a wait returns, and an empty wait ends
without FastStream's sleep (records fetched during that sleep would have waited it out)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from faststream.kafka import KafkaBroker

from orchestrator.messaging import Consumer, subscribe
from orchestrator.messaging._consumer import IDLE_WAIT_MS
from orchestrator.settings import Settings


class _Fetched:
    """What ``AIOKafkaConsumer.getmany`` returns, one answer per call; records the calls' arguments."""

    def __init__(self, *answers: dict[str, list[str]]) -> None:
        self._answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    async def getmany(self, **kwargs: Any) -> dict[str, list[str]]:
        self.calls.append(kwargs)
        return self._answers.pop(0)


def _subscriber(settings: Settings) -> Any:
    broker = KafkaBroker(settings.kafka_bootstrap_servers, apply_types=False)
    consumer = Consumer.__new__(Consumer)  # never called: the test drives only the wait for records
    subscriber, _ = subscribe(broker, settings, topics=["t"], group="g", consumer=consumer)
    return subscriber


async def test_an_empty_wait_returns_nothing_at_once_and_records_come_in_partition_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_sleep(_seconds: float) -> None:
        raise AssertionError("the consume loop slept after an empty wait")

    monkeypatch.setattr(anyio, "sleep", no_sleep)
    settings = Settings(consumer_batch_size=7)
    subscriber = _subscriber(settings)
    fetched = _Fetched({}, {"p0": ["a", "b"], "p1": ["c"]})
    assert await subscriber.get_msg(fetched) == ()
    assert await subscriber.get_msg(fetched) == ("a", "b", "c")
    assert fetched.calls == [{"timeout_ms": IDLE_WAIT_MS, "max_records": 7}] * 2
