"""Which partition a keyed record goes to: Kafka's own murmur2 choice, without recomputing it for every record."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Sequence

from aiokafka.partitioner import murmur2

# Keys are saga ids and order ids, and each is sent several times within seconds (a saga's commands and
# replies): remembering the last few thousand hashes spares most of aiokafka's pure-Python murmur2.
HASHES_KEPT = 8192


@functools.lru_cache(maxsize=HASHES_KEPT)
def _positive_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


class KeyHashPartitioner:
    """aiokafka's ``DefaultPartitioner``, the same choice as the Java client's, made cheaper: one partition
    needs no hash (the embedded stack's topics), and a key's hash is kept for its next record."""

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if len(all_partitions) == 1:
            return all_partitions[0]
        if key is None:
            return random.choice(available or all_partitions)  # noqa: S311 - spreading load, not security
        return all_partitions[_positive_hash(key) % len(all_partitions)]


def turn_of(now: float, period_s: float) -> int:
    """Which turn of partitions taken in turn the wall-clock time ``now`` falls in (producers and consumers agree)."""
    return int(now / period_s)


class RotatingPartitioner:
    """Every producer on the machine sends to the same partition of a topic for ``period_s`` seconds, then to the
    next, by the wall clock, whatever the key. For the embedded broker, whose cost per fetch grows with the
    batches held in the fetched partition: the partition taking records holds only its turns' batches."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.time) -> None:
        self._period_s = period_s
        self._clock = clock

    def __call__(self, _key: bytes | None, all_partitions: Sequence[int], _available: Sequence[int]) -> int:
        return all_partitions[turn_of(self._clock(), self._period_s) % len(all_partitions)]


def partitioner_for(rotation_s: float) -> KeyHashPartitioner | RotatingPartitioner:
    """Kafka's choice by key, or, with ``SAGALINE_PARTITION_ROTATION_S`` above 0, partitions in turn."""
    return RotatingPartitioner(rotation_s) if rotation_s else KeyHashPartitioner()
