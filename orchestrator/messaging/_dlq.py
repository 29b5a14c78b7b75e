"""Dead letters: the original bytes, where they came from and why, on ``saga.dlq``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from orchestrator.messaging._codec import RecordRef

log = logging.getLogger(__name__)

DLQ_HEADER_PREFIX = "sagaline-dlq-"
TRUNCATED_BYTES = 64 * 1024


def dlq_headers(record: RecordRef, *, consumer: str, reason: str, detail: str) -> list[tuple[str, bytes]]:
    extra = {
        "reason": reason,
        "error": detail[:4000],
        "source-topic": record.topic,
        "source-partition": str(record.partition),
        "source-offset": str(record.offset),
        "consumer": consumer,
        "at": datetime.now(UTC).isoformat(),
    }
    return [*record.headers, *((DLQ_HEADER_PREFIX + k, v.encode("utf-8")) for k, v in extra.items())]


class DeadLetters:
    """Publishes a record to the DLQ and waits for the broker's ack before the caller commits the offset."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, consumer: str) -> None:
        self._producer = producer
        self._topic = topic
        self._consumer = consumer

    async def send(self, record: RecordRef, *, reason: str, detail: str) -> None:
        headers = dlq_headers(record, consumer=self._consumer, reason=reason, detail=detail)
        try:
            await self._producer.send_and_wait(self._topic, value=record.value, key=record.key, headers=headers)
        except (MessageSizeTooLargeError, RecordTooLargeError):
            # Too big for the DLQ itself: keep the head of it; the whole record stays at its source offset.
            value = (record.value or b"")[:TRUNCATED_BYTES]
            size = str(len(record.value or b"")).encode()
            headers = [*headers, (f"{DLQ_HEADER_PREFIX}truncated-from", size)]
            await self._producer.send_and_wait(self._topic, value=value, key=record.key, headers=headers)
        log.warning(
            "dead-lettered %s/%d@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            detail[:300],
        )


def describe_dead_letter(record: Any) -> dict[str, Any]:
    """A DLQ record as JSON: why it was dead-lettered, where it came from, and the saga it concerns."""
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers}
    dlq = {k.removeprefix(DLQ_HEADER_PREFIX): v for k, v in headers.items() if k.startswith(DLQ_HEADER_PREFIX)}
    return {
        "offset": record.offset,
        "partition": record.partition,
        "reason": dlq.get("reason"),
        "error": dlq.get("error"),
        "source_topic": dlq.get("source-topic"),
        "source_partition": int(dlq.get("source-partition", "-1")),
        "source_offset": int(dlq.get("source-offset", "-1")),
        "consumer": dlq.get("consumer"),
        "at": dlq.get("at"),
        "key": record.key.decode("utf-8", "replace") if record.key else None,
        "saga_id": headers.get("sagaline-saga-id"),
        "size": len(record.value or b""),
    }
