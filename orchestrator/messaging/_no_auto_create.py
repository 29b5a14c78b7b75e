"""Sagaline's Kafka clients never create a topic by asking about it.

aiokafka asks for every topic's metadata with ``allow_auto_topic_creation`` set, and a broker that allows it
(Apache Kafka's default, and the embedded broker always) then creates the topic with *its* default partition
count. After the embedded broker restarts with its memory lost, the first producer or consumer to ask about a
topic created it with four partitions where Sagaline's own topic creation would have made one; consumers kept
only partition 0 (the embedded broker hands a member the assignment it had, however the partitions changed),
and three quarters of the commands and replies were never read: 791 and 892 of 2,000 sagas failed in chaos runs.
Topics are created only by ``ensure_topics`` and the topic guard, with the configured partition count; until
then a send waits for the topic (and fails after its timeout, leaving the outbox row to be sent again) instead
of going to a topic made up on the spot."""

from __future__ import annotations

import aiokafka.client
from aiokafka.protocol.metadata import MetadataRequest


class _WithoutAutoCreation(MetadataRequest):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False) -> None:
        super().__init__(topics, allow_auto_topic_creation)


def forbid_topic_auto_creation() -> None:
    """Make every aiokafka client in this process ask for metadata without creating topics (idempotent)."""
    aiokafka.client.MetadataRequest = _WithoutAutoCreation
