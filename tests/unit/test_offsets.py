"""The background offset committer: commits the next offset of what was done, per partition, skips partitions
revoked meanwhile, and keeps offsets whose commit failed for the next round."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from orchestrator.messaging import RecordRef
from orchestrator.messaging._offsets import OffsetCommitter


@dataclass
class _Consumer:
    assigned: set[TopicPartition]
    fail_next: bool = False
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise KafkaError("coordinator moved")
        self.commits.append(dict(offsets))


@dataclass
class _Subscriber:
    consumer: Any


def _record(partition: int, offset: int) -> RecordRef:
    return RecordRef(topic="t", partition=partition, offset=offset, key=None, value=b"{}", headers=())


async def test_commits_the_offset_after_the_last_done_record_of_each_assigned_partition() -> None:
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    consumer = _Consumer(assigned={p0, p1})
    committer = OffsetCommitter(_Subscriber(consumer), interval_s=0)
    committer.done([_record(0, 4), _record(0, 7), _record(1, 2)])
    committer.done([_record(0, 5), _record(2, 9)])  # partition 2 was revoked meanwhile
    await committer.flush()
    assert consumer.commits == [{p0: 8, p1: 3}]
    await committer.flush()
    assert len(consumer.commits) == 1, "nothing new: no commit"


async def test_a_failed_commit_is_retried_with_the_next() -> None:
    p0 = TopicPartition("t", 0)
    consumer = _Consumer(assigned={p0}, fail_next=True)
    committer = OffsetCommitter(_Subscriber(consumer), interval_s=0)
    committer.done([_record(0, 1)])
    await committer.flush()
    assert consumer.commits == []
    await committer.flush()
    assert consumer.commits == [{p0: 2}]


async def test_waits_for_the_consumer_to_start() -> None:
    committer = OffsetCommitter(_Subscriber(None), interval_s=0)
    committer.done([_record(0, 1)])
    await committer.flush()  # no consumer yet: keeps the offsets
    consumer = _Consumer(assigned={TopicPartition("t", 0)})
    committer._subscriber = _Subscriber(consumer)
    await committer.flush()
    assert consumer.commits == [{TopicPartition("t", 0): 2}]
