"""The assignment watch rejoins as a new member only once partitions stayed unassigned for its patience, and
leaves the group first (the embedded broker's generations are always 0, where aiokafka would not leave)."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.protocol.group import LeaveGroupRequest

from orchestrator.messaging import AssignmentWatch, unassigned


class _Coordinator:
    group_id = "sagaline-shipment"
    member_id = "member-1"

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.resets = 0

    async def _send_req(self, request: Any) -> None:
        self.sent.append(request)

    def reset_generation(self) -> None:
        self.resets += 1


class _Consumer:
    """What the watch reads of an aiokafka consumer: its subscription, metadata and assignment."""

    def __init__(self, partitions: int, assigned: set[int]) -> None:
        self.partitions = partitions
        self.assigned = assigned
        self._coordinator = _Coordinator()

    def subscription(self) -> set[str]:
        return {"shipment.commands"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("shipment.commands", p) for p in self.assigned}


def test_unassigned_lists_the_partitions_metadata_knows_and_the_member_lacks() -> None:
    assert unassigned(_Consumer(4, {0})) == {TopicPartition("shipment.commands", p) for p in (1, 2, 3)}
    assert unassigned(_Consumer(1, {0})) == set()


async def test_it_rejoins_only_after_its_patience_and_leaves_first() -> None:
    consumer = _Consumer(4, {0})
    watch = AssignmentWatch(patience=3)
    assert await watch.check(consumer) == set()
    assert await watch.check(consumer) == set()
    assert await watch.check(consumer) == unassigned(consumer)
    (leave,) = consumer._coordinator.sent
    assert isinstance(leave, LeaveGroupRequest)
    assert consumer._coordinator.resets == 1
    assert await watch.check(consumer) == set()  # counting starts again after a rejoin


async def test_a_complete_assignment_between_checks_starts_the_count_again() -> None:
    consumer = _Consumer(4, {0})
    watch = AssignmentWatch(patience=2)
    assert await watch.check(consumer) == set()
    consumer.assigned = {0, 1, 2, 3}
    assert await watch.check(consumer) == set()
    consumer.assigned = {0}
    assert await watch.check(consumer) == set()
    assert consumer._coordinator.resets == 0
