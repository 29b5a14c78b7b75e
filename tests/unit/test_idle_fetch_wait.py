"""The idle fetch wait: a consumer with no records for a while asks with the longer wait; its next records
bring back the short one. Off unless set; a setting that would shorten the wait is refused."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from orchestrator.messaging import Consumer, IdleFetchWait, subscribe
from orchestrator.settings import Settings


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_stretches_only_after_the_quiet_spell_and_snaps_back_on_records() -> None:
    clock = _Clock()
    wait = IdleFetchWait(busy_ms=10, idle_ms=100, after_s=2.0, clock=clock)
    assert wait.wait_ms(got_records=False) == 10
    clock.now += 1.9
    assert wait.wait_ms(got_records=False) == 10
    clock.now += 0.2
    assert wait.wait_ms(got_records=False) == 100
    assert wait.wait_ms(got_records=True) == 10
    clock.now += 1.0
    assert wait.wait_ms(got_records=False) == 10  # the quiet spell counts from the last records


def test_observe_sets_the_wait_aiokafka_reads_for_its_next_fetch_requests() -> None:
    clock = _Clock()
    wait = IdleFetchWait(busy_ms=10, idle_ms=250, after_s=0.0, clock=clock)
    consumer = SimpleNamespace(_fetcher=SimpleNamespace(_fetch_max_wait_ms=10))
    wait.observe(consumer, got_records=False)
    assert consumer._fetcher._fetch_max_wait_ms == 250
    wait.observe(consumer, got_records=True)
    assert consumer._fetcher._fetch_max_wait_ms == 10
    wait.observe(SimpleNamespace(), got_records=False)  # a consumer not started yet has no fetcher: no-op


def test_it_is_off_unless_set_and_refuses_an_idle_wait_shorter_than_the_fetch_wait() -> None:
    assert IdleFetchWait.from_settings(Settings()) is None
    assert IdleFetchWait.from_settings(Settings(fetch_idle_max_wait_ms=0)) is None
    made = IdleFetchWait.from_settings(Settings(fetch_max_wait_ms=10, fetch_idle_max_wait_ms=100))
    assert made is not None
    assert (made.busy_ms, made.idle_ms) == (10, 100)
    with pytest.raises(ValidationError, match="SAGALINE_FETCH_IDLE_MAX_WAIT_MS"):
        Settings(fetch_max_wait_ms=100, fetch_idle_max_wait_ms=50)
    with pytest.raises(ValueError, match="shorter than the fetch wait"):
        IdleFetchWait(busy_ms=100, idle_ms=50, after_s=1.0)


class _Quiet:
    """An aiokafka consumer as the consume loop sees it: ``getmany`` answers in turn, and the fetcher's wait."""

    def __init__(self, *answers: dict[str, list[str]]) -> None:
        self._answers = list(answers)
        self._fetcher = SimpleNamespace(_fetch_max_wait_ms=10)

    async def getmany(self, **_kwargs: Any) -> dict[str, list[str]]:
        return self._answers.pop(0)


async def test_the_consume_loop_applies_it_after_each_wait_for_records() -> None:
    settings = Settings(fetch_max_wait_ms=10, fetch_idle_max_wait_ms=100, fetch_idle_after_ms=0)
    broker = KafkaBroker(settings.kafka_bootstrap_servers, apply_types=False)
    subscriber, _ = subscribe(broker, settings, topics=["t"], group="g", consumer=Consumer.__new__(Consumer))
    consumer = _Quiet({}, {"p0": ["a"]})
    assert await subscriber.get_msg(consumer) == ()
    assert consumer._fetcher._fetch_max_wait_ms == 100
    assert await subscriber.get_msg(consumer) == ("a",)
    assert consumer._fetcher._fetch_max_wait_ms == 10
