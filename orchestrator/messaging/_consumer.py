"""Consumption glue: decode, process in one transaction, dead-letter what cannot be processed, then ack."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from orchestrator import telemetry
from orchestrator.messaging._codec import DecodeError, Incoming, RecordRef, decode
from orchestrator.messaging._dlq import DeadLetters
from orchestrator.messaging._kafka import consumer_options
from orchestrator.settings import Settings
from orchestrator.transient import backoff_forever

log = logging.getLogger(__name__)

Processor = Callable[[Incoming], Awaitable[None]]


class Rejected(Exception):  # noqa: N818 - reads as "the message was rejected"
    """A well-formed message that cannot be processed (unknown saga, wrong topic, unexpected reply)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def record_ref(raw: Any) -> RecordRef:
    return RecordRef(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple(raw.headers or ()),
    )


class Consumer:
    """Turns one Kafka record into one processed message or one dead letter; never raises for bad input."""

    def __init__(
        self,
        processor: Processor,
        dead_letters: DeadLetters,
        *,
        bare_json_topics: frozenset[str],
        max_message_bytes: int,
    ) -> None:
        self._max_message_bytes = max_message_bytes
        self._processor = processor
        self._dead_letters = dead_letters
        self._bare_json_topics = bare_json_topics

    async def handle(self, record: RecordRef) -> None:
        with telemetry.consuming(record):
            await self._handle(record)

    async def _handle(self, record: RecordRef) -> None:
        reason: str | None = None
        detail = ""
        try:
            incoming = decode(
                record,
                require_envelope=record.topic not in self._bare_json_topics,
                max_bytes=self._max_message_bytes,
            )
            await backoff_forever(lambda: self._processor(incoming), what="message processing")
        except DecodeError as exc:
            reason, detail = exc.reason, exc.detail
        except Rejected as exc:
            reason, detail = exc.reason, exc.detail
        except Exception as exc:
            log.exception("handler failed on %s/%d@%d", record.topic, record.partition, record.offset)
            reason, detail = "handler-error", f"{type(exc).__name__}: {exc}"
        if reason is not None:
            await backoff_forever(
                lambda: self._dead_letters.send(record, reason=reason, detail=detail),
                what="dead-lettering",
            )
            telemetry.dead_lettered(record, reason, detail)


async def handle_batch(consumer: Consumer, records: list[RecordRef], *, concurrency: int) -> None:
    """Records with the same partition and key (one saga) run in order; different sagas run concurrently."""
    lanes: dict[tuple[int, bytes | None], list[RecordRef]] = defaultdict(list)
    for record in records:
        lanes[(record.partition, record.key)].append(record)
    limit = asyncio.Semaphore(concurrency)

    async def run_lane(lane: list[RecordRef]) -> None:
        async with limit:
            for record in lane:
                await consumer.handle(record)

    await asyncio.gather(*(run_lane(lane) for lane in lanes.values()))


def _header_safe(records: tuple[Any, ...]) -> tuple[Any, ...]:
    def safe(value: bytes | None) -> bytes:
        try:
            (value or b"").decode("utf-8")
        except UnicodeDecodeError:
            return b""
        return value or b""

    return tuple(dataclasses.replace(r, headers=[(k, safe(v)) for k, v in r.headers]) for r in records)


async def _tolerant_parser(records: tuple[Any, ...], original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream decodes every header as UTF-8 and drops the whole batch when one cannot be; give it
    sanitised copies, then hand our handler the untouched records so bad ones reach the DLQ intact."""
    message = await original(_header_safe(records))
    message.raw_message = records
    return message


async def _no_decoder(_message: Any, _original: Callable[[Any], Awaitable[Any]]) -> None:
    return None  # the handler reads raw records itself


def subscribe(broker: KafkaBroker, settings: Settings, *, topics: list[str], group: str, consumer: Consumer) -> Any:
    """Register a FastStream batch subscriber that commits offsets only after every record of the batch
    was handled, i.e. after its database commit (or its dead letter's broker ack). Returns the subscriber
    (its ``consumer`` attribute is the aiokafka consumer once started)."""
    subscriber = broker.subscriber(
        *topics,
        group_id=group,
        ack_policy=AckPolicy.MANUAL,
        batch=True,
        max_records=settings.consumer_batch_size,
        batch_timeout_ms=settings.fetch_max_wait_ms,
        parser=_tolerant_parser,
        decoder=_no_decoder,
        **consumer_options(settings),
    )

    @subscriber  # type: ignore[untyped-decorator]
    async def _on_batch(msg: KafkaMessage) -> None:
        raw = msg.raw_message
        records = [record_ref(r) for r in (raw if isinstance(raw, tuple) else (raw,))]
        await handle_batch(consumer, records, concurrency=settings.consumer_concurrency)
        await msg.ack()

    return subscriber
