"""Rejoining a consumer group as a new member when this member is not given every partition.

The embedded broker's group coordinator hands a member that rejoins the assignment it gave that member id
before, whatever the leader now sends: when a topic's partition count changes (a topic re-created after a
broker restart, say), aiokafka rejoins as it should and keeps the partitions it had. Joining under a new member
id gets the leader's real assignment. Only for a group with one member per service, as the embedded stack
runs (``SAGALINE_REJOIN_UNASSIGNED``): with several members each one rightly holds a share."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import LeaveGroupRequest

log = logging.getLogger(__name__)


def unassigned(consumer: Any) -> set[TopicPartition]:
    """Partitions of the subscribed topics, as the consumer's metadata knows them, that it was not assigned."""
    wanted = {
        TopicPartition(topic, partition)
        for topic in consumer.subscription()
        for partition in consumer.partitions_for_topic(topic) or ()
    }
    return wanted - set(consumer.assignment())


async def rejoin_as_new_member(consumer: Any) -> None:
    coordinator = consumer._coordinator  # noqa: SLF001 - aiokafka has no public way to rejoin under a new id
    try:
        # aiokafka leaves only in generations above 0, and this broker's are always 0: leave here, so the old
        # member id holds no partitions until its session times out.
        await coordinator._send_req(LeaveGroupRequest(coordinator.group_id, coordinator.member_id))  # noqa: SLF001
    except KafkaError as exc:
        log.info("leaving the group before rejoining failed (%s); rejoining anyway", exc)
    coordinator.reset_generation()


class AssignmentWatch:
    """Rejoins as a new member once partitions stay unassigned for ``patience`` checks in a row (a rebalance
    in progress leaves them unassigned for a moment, and this broker holds a join for half a session)."""

    def __init__(self, *, patience: int) -> None:
        self._patience = patience
        self._missing_for = 0

    async def check(self, consumer: Any) -> set[TopicPartition]:
        """The partitions it rejoined for (empty when it did not)."""
        missing = unassigned(consumer)
        self._missing_for = self._missing_for + 1 if missing else 0
        if self._missing_for < self._patience:
            return set()
        self._missing_for = 0
        log.warning(
            "partitions %s stayed unassigned; rejoining the group as a new member",
            ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in missing)),
        )
        await rejoin_as_new_member(consumer)
        return missing
