"""Re-fetching records a broker let a consumer skip.

The embedded broker, when producers write to one partition concurrently, can answer a consumer that follows the
partition's end with a batch from past records not yet visible: the consumer's position then moves beyond them,
and they would only be seen again after a restart (a saga waited for its step's deadline and the resend; measured
with ``bench/broker_growth.py``'s neighbour, see ``docs/design.md``, "The embedded broker"). A re-read from the
start finds them all, so they were written, just not yet readable.

With the guard on, a forward jump in a partition's offsets sends the consumer back to the first offset it has not
seen, and the records from there on are left for the next fetch. A gap that is still there after ``retries``
re-fetches is accepted: Apache Kafka has real gaps (transaction markers, compaction), which is why the guard is
only on for the embedded broker (``SAGALINE_REFETCH_GAPS``). A consumer moved back by a rebalance or a rewind
reads older offsets, which is no gap; one moved forward (another instance went further) re-reads a little, and the
inbox drops it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.messaging._codec import RecordRef

log = logging.getLogger(__name__)

Partition = tuple[str, int]


@dataclass(frozen=True)
class Admitted:
    records: list[RecordRef]
    """The records to handle now, in their order."""
    seek: dict[Partition, int] = field(default_factory=dict)
    """Where to send the consumer back, per partition whose records stopped at a gap."""


class GapGuard:
    def __init__(self, *, retries: int = 3) -> None:
        self._retries = retries
        self._next: dict[Partition, int] = {}  # the offset expected next, per partition
        self._tries: dict[tuple[Partition, int], int] = {}  # re-fetches so far, per gap
        self.refetched = 0

    def admit(self, records: Sequence[RecordRef]) -> Admitted:
        admitted: list[RecordRef] = []
        seek: dict[Partition, int] = {}
        for record in records:
            partition = (record.topic, record.partition)
            if partition in seek:
                continue  # past a gap of this batch: the next fetch brings it again
            expected = self._next.get(partition)
            if expected is not None and record.offset > expected and self._refetch(partition, expected):
                seek[partition] = expected
                continue
            admitted.append(record)
            self._next[partition] = record.offset + 1
            self._tries.pop((partition, record.offset), None)  # a gap it fills
        return Admitted(records=admitted, seek=seek)

    def _refetch(self, partition: Partition, expected: int) -> bool:
        gap = (partition, expected)
        tries = self._tries.get(gap, 0)
        if tries >= self._retries:
            del self._tries[gap]
            log.info("%s[%d]: offsets from %d are missing after %d re-fetches; going on", *partition, expected, tries)
            return False
        self._tries[gap] = tries + 1
        self.refetched += 1
        return True
