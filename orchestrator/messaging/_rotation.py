"""Fetching only the partitions that producers are writing to now, when partitions rotate.

With ``SAGALINE_PARTITION_ROTATION_S`` every producer sends to partition ``turn % partitions`` of a topic, where
``turn`` counts periods of the wall clock (``RotatingPartitioner``). A consumer that fetched every partition would
pay for the idle ones in every request, client and broker alike, so it pauses all but the partition of this turn,
and, within ``margin_s`` of a turn's change, the partition on the other side of it (records sent just before the
change, or just after). Nothing is left behind: every ``sweep_every_s`` one fetch asks for every partition, and a
partition whose position is behind its high watermark stays fetched until it has caught up (a backlog after a
restart, a producer's late retry)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from orchestrator.messaging._partitioner import turn_of

MARGIN_S = 0.15
SWEEP_EVERY_S = 2.5
# Long enough for two fetches at the longest wait a busy consumer uses (50 ms), and one at an idle one's (100 ms).
SWEEP_S = 0.25
POSITION_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Window:
    turns: tuple[int, ...]
    """The turns whose partitions to fetch."""
    until: float
    """Wall-clock time at which the window changes."""


def window(now: float, period_s: float, margin_s: float = MARGIN_S) -> Window:
    turn = turn_of(now, period_s)
    into = now - turn * period_s
    if into < margin_s:
        return Window((turn - 1, turn), turn * period_s + margin_s)
    if into >= period_s - margin_s:
        return Window((turn, turn + 1), (turn + 1) * period_s)
    return Window((turn,), (turn + 1) * period_s - margin_s)


def in_window(assigned: Collection[TopicPartition], turns: tuple[int, ...]) -> set[TopicPartition]:
    """The assigned partitions that the turns' producers write to (partition ``turn % partitions`` per topic)."""
    counts: dict[str, int] = {}
    for tp in assigned:
        counts[tp.topic] = counts.get(tp.topic, 0) + 1
    return {tp for tp in assigned if tp.partition in {turn % counts[tp.topic] for turn in turns}}


class RotationFollower:
    """``before_fetch`` pauses and resumes the consumer's partitions for the coming fetch and says how long that
    fetch may wait (until what it fetches changes); ``after_fetch`` notes which partitions are behind."""

    def __init__(
        self,
        period_s: float,
        *,
        margin_s: float = MARGIN_S,
        sweep_every_s: float = SWEEP_EVERY_S,
        sweep_s: float = SWEEP_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._period_s = period_s
        self._margin_s = margin_s
        self._sweep_every_s = sweep_every_s
        self._sweep_s = sweep_s
        self._clock = clock
        self._sweep_began = float("-inf")
        self._sweep_checked = True
        self._behind: set[TopicPartition] = set()
        self._fetched: frozenset[TopicPartition] | None = None

    def before_fetch(self, consumer: Any, longest_wait_ms: int) -> int:
        now = self._clock()
        assigned: set[TopicPartition] = set(consumer.assignment())
        if now - self._sweep_began >= self._sweep_every_s:
            self._sweep_began, self._sweep_checked = now, False
        if now - self._sweep_began < self._sweep_s:
            wanted, until = frozenset(assigned), self._sweep_began + self._sweep_s
        else:
            current = window(now, self._period_s, self._margin_s)
            wanted, until = frozenset(in_window(assigned, current.turns) | (self._behind & assigned)), current.until
        if wanted != self._fetched:
            consumer.pause(*(assigned - wanted))
            consumer.resume(*wanted)
            self._fetched = wanted
        return max(1, min(longest_wait_ms, int((until - now) * 1000) + 1))

    async def after_fetch(self, consumer: Any) -> None:
        """Once a sweep is over, every partition behind its high watermark; otherwise, which are still behind."""
        sweep_over = not self._sweep_checked and self._clock() - self._sweep_began >= self._sweep_s
        assigned = set(consumer.assignment())
        candidates = assigned if sweep_over else self._behind & assigned
        behind = {tp for tp in candidates if await _behind(consumer, tp)}
        if sweep_over:
            self._behind, self._sweep_checked = behind, True
        else:
            self._behind = behind


async def _behind(consumer: Any, tp: TopicPartition) -> bool:
    highwater: int | None = consumer.highwater(tp)
    if highwater is None:
        return True  # not fetched yet
    try:
        position: int = await asyncio.wait_for(consumer.position(tp), POSITION_TIMEOUT_S)
    except TimeoutError:
        return True  # its position is being reset: fetch it until it is known
    return position < highwater
