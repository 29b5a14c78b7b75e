"""A consumer's fetch wait: longer once it has had no records for a while, longer while its machine's CPUs are
saturated (with hysteresis), the short one otherwise. Off unless set; a setting that would shorten the wait is
refused."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from orchestrator.messaging import Consumer, FetchWait, MachineLoad, subscribe
from orchestrator.messaging._fetch_wait import busy_share
from orchestrator.settings import Settings


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _NEVER_TRYING() -> float:  # noqa: N802 - reads as a constant
    """A wall clock stuck 7 s into a quarter minute: never within a try at the short wait."""
    return 7.0


class _CpuTimes:
    """Machine CPU times that advance by the busy share the test sets, one second of two CPUs per look."""

    def __init__(self) -> None:
        self.busy = 0.0
        self._user = self._idle = 0.0

    def __call__(self) -> Any:
        self._user += 2 * self.busy
        self._idle += 2 * (1 - self.busy)
        return SimpleNamespace(user=self._user, system=0.0, idle=self._idle, iowait=0.0, steal=0.0)


def test_busy_share_counts_stolen_time_as_busy_and_iowait_as_idle() -> None:
    before = SimpleNamespace(user=0, nice=0, system=0, idle=0, iowait=0, irq=0, softirq=0, steal=0)
    after = SimpleNamespace(user=1, nice=0, system=1, idle=1, iowait=1, irq=0, softirq=0, steal=2)
    assert busy_share(before, after) == pytest.approx(4 / 6)
    assert busy_share(after, after) == 0.0


def test_the_machine_counts_as_saturated_from_85_percent_until_below_60() -> None:
    clock, cpu = _Clock(), _CpuTimes()
    machine = MachineLoad(clock=clock, wall=_NEVER_TRYING, cpu_times=cpu)
    seen = []
    for busy in (0.5, 0.84, 0.9, 0.7, 0.61, 0.55, 0.8, 0.86):
        cpu.busy = busy
        clock.now += 1.0
        seen.append(machine.saturated())
    assert seen == [False, False, True, True, True, False, False, True]


def test_the_machine_is_looked_at_no_more_than_once_a_second() -> None:
    clock, cpu = _Clock(), _CpuTimes()
    machine = MachineLoad(clock=clock, wall=_NEVER_TRYING, cpu_times=cpu)
    cpu.busy = 1.0
    clock.now += 0.5
    assert machine.saturated() is False  # too soon to look
    clock.now += 0.5
    assert machine.saturated() is True


def _machine_with_wall_at(wall_at_start: float) -> tuple[_Clock, _CpuTimes, MachineLoad]:
    clock, cpu = _Clock(), _CpuTimes()
    start = clock.now
    return clock, cpu, MachineLoad(clock=clock, wall=lambda: clock.now - start + wall_at_start, cpu_times=cpu)


def test_while_saturated_the_short_wait_is_tried_for_the_first_two_seconds_of_each_quarter_minute() -> None:
    clock, cpu, machine = _machine_with_wall_at(10.0)
    cpu.busy = 0.95
    clock.now += 1.0  # wall 11
    assert machine.saturated() is True
    clock.now += 3.9  # wall 14.9
    assert machine.saturated() is True
    clock.now += 0.2  # wall 15.1: the try from 15 to 17
    assert machine.saturated() is False, "saturated, but trying the short wait"
    cpu.busy = 0.7
    clock.now += 0.9  # wall 16.0: a look from 14.9, begun before the try: it does not judge the short wait
    assert machine.saturated() is False
    clock.now += 1.2  # wall 17.2: the try is over
    assert machine.saturated() is True, "still saturated: no look lay within the try"


@pytest.mark.parametrize(("busy_at_the_short_wait", "saturated_after"), [(0.75, False), (0.9, True)])
def test_a_look_within_a_try_ends_the_saturation_unless_the_short_wait_saturates_the_machine(
    busy_at_the_short_wait: float, saturated_after: bool
) -> None:
    clock, cpu, machine = _machine_with_wall_at(14.0)
    cpu.busy = 0.95
    clock.now += 0.5  # wall 14.5: too soon to look
    assert machine.saturated() is False
    clock.now += 0.6  # wall 15.1: the look from 14.0 saturates; the try from 15 to 17 is on
    assert machine.saturated() is False
    cpu.busy = busy_at_the_short_wait  # 0.75 lies between the thresholds: without the try, saturated for good
    clock.now += 1.1  # wall 16.2: a look wholly within the try
    assert machine.saturated() is False
    clock.now += 1.0  # wall 17.2: after the try
    cpu.busy = 0.75
    assert machine.saturated() is saturated_after


def test_the_idle_wait_starts_after_the_quiet_spell_and_records_bring_back_the_short_one() -> None:
    clock = _Clock()
    wait = FetchWait(base_ms=10, idle_ms=100, idle_after_s=2.0, clock=clock)
    assert wait.wait_ms(got_records=False) == 10
    clock.now += 1.9
    assert wait.wait_ms(got_records=False) == 10
    clock.now += 0.2
    assert wait.wait_ms(got_records=False) == 100
    assert wait.wait_ms(got_records=True) == 10
    clock.now += 1.0
    assert wait.wait_ms(got_records=False) == 10  # the quiet spell counts from the last records


def test_a_saturated_machine_lengthens_the_wait_of_a_busy_consumer_and_idle_still_wins() -> None:
    clock, cpu = _Clock(), _CpuTimes()
    wait = FetchWait(
        base_ms=10,
        idle_ms=100,
        idle_after_s=2.0,
        saturated_ms=50,
        machine=MachineLoad(clock=clock, wall=_NEVER_TRYING, cpu_times=cpu),
        clock=clock,
    )
    cpu.busy = 0.95
    clock.now += 1.0
    assert wait.wait_ms(got_records=True) == 50
    clock.now += 2.5
    assert wait.wait_ms(got_records=False) == 100  # no records for 2.5 s: idle, whatever the machine does
    cpu.busy = 0.3
    clock.now += 1.0
    assert wait.wait_ms(got_records=True) == 10


def test_observe_sets_the_wait_aiokafka_reads_for_its_next_fetch_requests() -> None:
    wait = FetchWait(base_ms=10, idle_ms=250, idle_after_s=0.0)
    consumer = SimpleNamespace(_fetcher=SimpleNamespace(_fetch_max_wait_ms=10))
    wait.observe(consumer, got_records=False)
    assert consumer._fetcher._fetch_max_wait_ms == 250
    wait.observe(consumer, got_records=True)
    assert consumer._fetcher._fetch_max_wait_ms == 10
    wait.observe(SimpleNamespace(), got_records=False)  # a consumer not started yet has no fetcher: no-op


def test_it_is_off_unless_set_and_refuses_a_longer_wait_shorter_than_the_fetch_wait() -> None:
    assert FetchWait.from_settings(Settings()) is None
    assert FetchWait.from_settings(Settings(fetch_idle_max_wait_ms=0, fetch_saturated_wait_ms=0)) is None
    made = FetchWait.from_settings(Settings(fetch_max_wait_ms=10, fetch_idle_max_wait_ms=100))
    assert made is not None
    assert (made.base_ms, made.idle_ms, made.saturated_ms) == (10, 100, 0)
    saturated = FetchWait.from_settings(Settings(fetch_max_wait_ms=10, fetch_saturated_wait_ms=50))
    assert saturated is not None
    assert (saturated.idle_ms, saturated.saturated_ms) == (0, 50)
    for setting, name in (
        ("fetch_idle_max_wait_ms", "SAGALINE_FETCH_IDLE_MAX_WAIT_MS"),
        ("fetch_saturated_wait_ms", "SAGALINE_FETCH_SATURATED_WAIT_MS"),
    ):
        with pytest.raises(ValidationError, match=name):
            Settings(fetch_max_wait_ms=100, **{setting: 50})
    with pytest.raises(ValueError, match="shorter than the fetch wait"):
        FetchWait(base_ms=100, saturated_ms=50)


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
