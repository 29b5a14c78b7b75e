"""Partitions taken in turn: which partition a producer writes to, and which a consumer fetches when."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from orchestrator.messaging._partitioner import KeyHashPartitioner, RotatingPartitioner, partitioner_for
from orchestrator.messaging._rotation import MARGIN_S, RotationFollower, Window, in_window, window


def test_every_producer_writes_to_the_partition_of_the_turn_whatever_the_key() -> None:
    now = [100.4]
    partitioner = RotatingPartitioner(1.0, clock=lambda: now[0])
    assert {partitioner(key, [0, 1, 2, 3], [0, 1, 2, 3]) for key in (b"a", b"b", None)} == {100 % 4}
    now[0] = 101.0
    assert partitioner(b"a", [0, 1, 2, 3], []) == 101 % 4
    assert partitioner(b"a", [0], [0]) == 0


def test_without_rotation_the_key_decides() -> None:
    assert isinstance(partitioner_for(0), KeyHashPartitioner)
    assert isinstance(partitioner_for(1.0), RotatingPartitioner)


def test_the_window_holds_the_turn_and_near_a_change_the_turn_on_its_other_side() -> None:
    assert window(50.05, 1.0) == Window((49, 50), 50.0 + MARGIN_S)
    assert window(50.5, 1.0) == Window((50,), 51.0 - MARGIN_S)
    assert window(50.9, 1.0) == Window((50, 51), 51.0)


def test_each_topic_takes_the_turn_modulo_its_own_partition_count() -> None:
    assigned = [TopicPartition("a", p) for p in range(8)] + [TopicPartition("b", p) for p in range(3)]
    assert in_window(assigned, (9,)) == {TopicPartition("a", 1), TopicPartition("b", 0)}
    assert in_window(assigned, (7, 8)) == {
        TopicPartition("a", 7),
        TopicPartition("a", 0),
        TopicPartition("b", 1),
        TopicPartition("b", 2),
    }


class _Consumer:
    """The part of aiokafka's consumer the follower uses: assignment, pause/resume, high watermarks, positions."""

    def __init__(self, partitions: int) -> None:
        self.assigned = {TopicPartition("t", p) for p in range(partitions)}
        self.paused: set[TopicPartition] = set()
        self.highwaters: dict[TopicPartition, int] = dict.fromkeys(self.assigned, 10)
        self.positions: dict[TopicPartition, int] = dict.fromkeys(self.assigned, 10)

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def fetched(self) -> set[int]:
        return {tp.partition for tp in self.assigned - self.paused}


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_sweep_fetches_every_partition_then_only_the_turn_and_those_behind_are_fetched() -> None:
    now = [1000.5]
    follower = RotationFollower(1.0, sweep_every_s=2.5, sweep_s=0.25, clock=lambda: now[0])
    consumer = _Consumer(8)
    consumer.positions[TopicPartition("t", 5)] = 3  # behind its high watermark

    wait_ms = follower.before_fetch(consumer, 100)
    assert consumer.fetched() == set(range(8))  # the first fetch sweeps
    assert wait_ms == 100  # the longest wait, shorter than the sweep
    _run(follower.after_fetch(consumer))

    now[0] = 1000.8
    follower.before_fetch(consumer, 200)
    _run(follower.after_fetch(consumer))  # the sweep is over: partition 5 is behind
    assert consumer.fetched() == {1000 % 8}

    wait_ms = follower.before_fetch(consumer, 200)
    assert consumer.fetched() == {1000 % 8, 5}
    assert wait_ms == 51  # until 1000.85, where the window takes in the next turn

    consumer.positions[TopicPartition("t", 5)] = 10
    _run(follower.after_fetch(consumer))  # caught up
    now[0] = 1000.9
    follower.before_fetch(consumer, 200)
    assert consumer.fetched() == {1000 % 8, 1001 % 8}


def test_a_partition_not_fetched_yet_counts_as_behind() -> None:
    now = [2000.5]
    follower = RotationFollower(1.0, sweep_s=0.25, clock=lambda: now[0])
    consumer = _Consumer(4)
    del consumer.highwaters[TopicPartition("t", 3)]
    follower.before_fetch(consumer, 200)
    now[0] = 2000.8
    _run(follower.after_fetch(consumer))
    follower.before_fetch(consumer, 200)
    assert consumer.fetched() == {2000 % 4, 3}
