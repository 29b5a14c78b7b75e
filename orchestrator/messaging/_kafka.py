"""Kafka clients configured from settings: FastStream broker, producer, topic creation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream.kafka import KafkaBroker

from orchestrator.messaging._no_auto_create import forbid_topic_auto_creation
from orchestrator.messaging._partitioner import partitioner_for
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


FETCH_LIMIT_BYTES = 64 * 1024 * 1024
# Refresh partition counts often: a broker that lost a topic and re-created it with fewer partitions would
# otherwise have writes to the vanished partitions acknowledged and dropped until the next refresh.
METADATA_MAX_AGE_MS = 5_000


def consumer_options(settings: Settings) -> dict[str, Any]:
    """Subscriber options. ``earliest`` because the embedded broker reports wrong end offsets."""
    return {
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        # Fetch records far above max_message_bytes so an oversized one reaches the DLQ instead of
        # stalling its partition.
        "max_partition_fetch_bytes": FETCH_LIMIT_BYTES,
        "fetch_max_bytes": FETCH_LIMIT_BYTES,
    }


def make_broker(settings: Settings, *, middlewares: Iterable[Any] = ()) -> KafkaBroker:
    forbid_topic_auto_creation()
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        enable_idempotence=False,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        middlewares=tuple(middlewares),
        # Our handlers take the raw records: dependency injection would only cost a thread-pool hop per batch.
        apply_types=False,
        logger=logging.getLogger("sagaline.faststream"),
    )


def make_producer(settings: Settings) -> AIOKafkaProducer:
    forbid_topic_auto_creation()
    # No idempotent producer or transactions: effectively-once comes from the outbox and inboxes.
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_idempotence=False,
        acks="all",
        linger_ms=settings.producer_linger_ms,
        # aiokafka's default (16 KB) made a send wait, once a partition's batch was full, until that batch had
        # gone out: a transaction's commands went out in 16 KB round trips, each one more batch for the broker.
        max_batch_size=settings.producer_batch_bytes,
        request_timeout_ms=15_000,
        max_request_size=FETCH_LIMIT_BYTES,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        partitioner=partitioner_for(settings.partition_rotation_s),
    )


async def ensure_topics(settings: Settings, topics: Iterable[str] | None = None, *, timeout_s: float = 60) -> list[str]:
    """Create every missing topic with its final partition count before anyone produces: the embedded
    broker acknowledges and drops writes to a missing topic. Returns the topics it created."""
    wanted = list(topics if topics is not None else settings.topics.all())
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await _create_missing(settings, wanted)
        except KafkaError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("broker not ready for topic creation (%s); retrying", exc)
            await asyncio.sleep(0.5)


def _partitions(settings: Settings, topic: str) -> int:
    # One DLQ partition: dead letters are few, and `sagaline dlq replay <offset>` needs offsets to be unique.
    # One events partition when partitions rotate: a saga's lifecycle events stay in order for their readers.
    if topic == settings.topics.dlq or (settings.partition_rotation_s and topic == settings.topics.events):
        return 1
    return settings.topic_partitions


async def guard_topics(settings: Settings, *, interval_s: float = 5.0) -> None:
    """Re-create topics that disappear: the embedded broker keeps them only in memory, so a broker restart
    loses them, and it would acknowledge and drop every write until they exist again."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            created = await _create_missing(settings, list(settings.topics.all()))
        except KafkaError as exc:
            log.info("topic check failed (%s); will retry", exc)
            continue
        if created:
            log.warning("re-created missing topics %s (broker restarted?)", created)


async def _create_missing(settings: Settings, wanted: list[str]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=5000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(t, _partitions(settings, t), replication_factor=1) for t in missing]
                )
            log.info("created topics %s", missing)
        return missing
    finally:
        await admin.close()
