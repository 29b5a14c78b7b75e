"""Consumption glue: decode a batch, process it in one transaction, dead-letter what cannot be processed, then ack."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from orchestrator import telemetry
from orchestrator.messaging._codec import DecodeError, Incoming, RecordRef, decode
from orchestrator.messaging._dlq import DeadLetters
from orchestrator.messaging._fetch_wait import FetchWait
from orchestrator.messaging._gaps import GapGuard
from orchestrator.messaging._kafka import consumer_options
from orchestrator.messaging._offsets import OffsetCommitter
from orchestrator.messaging._rotation import RotationFollower
from orchestrator.settings import Settings
from orchestrator.transient import backoff_forever

log = logging.getLogger(__name__)


class Rejected(Exception):  # noqa: N818 - reads as "the message was rejected"
    """A well-formed message that cannot be processed (unknown saga, wrong topic, unexpected reply)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# Handles a batch in one transaction, in order; returns, message by message, None or why it was rejected.
# A rejected message must leave nothing behind (its inbox claim included): it goes to the DLQ instead.
BatchProcessor = Callable[[Sequence[Incoming]], Awaitable[Sequence[Rejected | None]]]


def record_ref(raw: Any) -> RecordRef:
    return RecordRef(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple(raw.headers or ()),
    )


@dataclass(frozen=True)
class _Failure:
    record: RecordRef
    span: telemetry.ConsumerSpan | None
    reason: str
    detail: str


class Consumer:
    """Turns a batch of Kafka records into one processed batch plus dead letters; never raises for bad input."""

    def __init__(
        self,
        processor: BatchProcessor,
        dead_letters: DeadLetters,
        *,
        bare_json_topics: frozenset[str],
        max_message_bytes: int,
    ) -> None:
        self._max_message_bytes = max_message_bytes
        self._processor = processor
        self._dead_letters = dead_letters
        self._bare_json_topics = bare_json_topics

    async def handle_batch(self, records: Sequence[RecordRef]) -> None:
        """Decode every record, process the decodable ones in one call (records of one saga stay in order),
        dead-letter the rest; each record has its own consumer span, ended when the batch is done."""
        spans = [telemetry.consumer_span(record) for record in records]
        try:
            failures: list[_Failure] = []
            decoded: list[Incoming] = []
            for record, span in zip(records, spans, strict=True):
                try:
                    incoming = decode(
                        record,
                        require_envelope=record.topic not in self._bare_json_topics,
                        max_bytes=self._max_message_bytes,
                        span=span,
                    )
                except DecodeError as exc:
                    failures.append(_Failure(record, span, exc.reason, exc.detail))
                    continue
                decoded.append(incoming)
            for incoming, outcome in zip(decoded, await self._process(decoded), strict=True):
                if outcome is not None:
                    failures.append(_Failure(incoming.record, incoming.span, outcome.reason, outcome.detail))
            for failure in failures:
                await self._dead_letter(failure)
        finally:
            for span in spans:
                if span is not None:
                    span.end()

    async def _process(self, batch: Sequence[Incoming]) -> Sequence[Rejected | None]:
        """Transient faults retry the batch; anything else is narrowed down by handling the records one by
        one, so only the record that breaks the handler is dead-lettered (``handler-error``)."""
        if not batch:
            return []
        try:
            return await backoff_forever(lambda: self._processor(batch), what="message processing")
        except Exception as exc:
            if len(batch) > 1:
                log.warning("a batch of %d failed (%r); handling its records one by one", len(batch), exc)
                return [outcome for incoming in batch for outcome in await self._process([incoming])]
            if isinstance(exc, Rejected):
                return [exc]
            record = batch[0].record
            log.exception("handler failed on %s/%d@%d", record.topic, record.partition, record.offset)
            return [Rejected("handler-error", f"{type(exc).__name__}: {exc}")]

    async def _dead_letter(self, failure: _Failure) -> None:
        await backoff_forever(
            lambda: self._dead_letters.send(failure.record, reason=failure.reason, detail=failure.detail),
            what="dead-lettering",
        )
        with telemetry.handling(failure.span):
            telemetry.dead_lettered(failure.record, failure.reason, failure.detail)


def _decodable(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _header_safe(records: tuple[Any, ...]) -> tuple[Any, ...]:
    if all(_decodable(v) for r in records for _, v in r.headers):
        return records  # the usual case: no copies
    return tuple(
        dataclasses.replace(r, headers=[(k, v if _decodable(v) else b"") for k, v in r.headers]) for r in records
    )


async def _tolerant_parser(records: tuple[Any, ...], original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream decodes every header as UTF-8 and drops the whole batch when one cannot be; give it
    sanitised copies, then hand our handler the untouched records so bad ones reach the DLQ intact."""
    message = await original(_header_safe(records))
    message.raw_message = records
    return message


async def _raw_records(message: Any, _original: Callable[[Any], Awaitable[Any]]) -> Any:
    return message.raw_message  # the handler decodes records itself, so bad ones reach the DLQ intact


# How long one wait for records lasts before the consume loop looks at whether it should stop. Records that
# arrive end the wait at once; this bounds only how long a stopping subscriber takes to notice.
IDLE_WAIT_MS = 200


def _hand_over_at_once(subscriber: Any, fetch_wait: FetchWait | None, rotation: RotationFollower | None) -> None:
    """FastStream's batch subscriber sleeps its batch timeout after every empty fetch, and records that arrive
    meanwhile wait that sleep out: up to one fetch wait more per hop. Wait for records instead, without sleeping
    (this replaces the only use of its batch timeout). With ``fetch_wait``, each wait's outcome sets the fetch
    wait of the consumer's next requests. With ``rotation``, each fetch asks only for the partitions written to now
    (``_rotation.py``)."""

    async def get_msg(consumer: Any) -> tuple[Any, ...]:
        wait_ms = IDLE_WAIT_MS if rotation is None else rotation.before_fetch(consumer, IDLE_WAIT_MS)
        batches = await consumer.getmany(timeout_ms=wait_ms, max_records=subscriber.max_records)
        if rotation is not None:
            await rotation.after_fetch(consumer)
        records = tuple(itertools.chain.from_iterable(batches.values()))
        if fetch_wait is not None:
            fetch_wait.observe(consumer, got_records=bool(records))
        return records

    subscriber.get_msg = get_msg


def subscribe(
    broker: KafkaBroker, settings: Settings, *, topics: list[str], group: str, consumer: Consumer
) -> tuple[Any, OffsetCommitter]:
    """Register a FastStream batch subscriber whose offsets are committed only after every record of the
    batch was handled, i.e. after its database commit (or its dead letter's broker ack), by the returned
    committer (run it as a task). Returns the subscriber too (its ``consumer`` attribute is the aiokafka
    consumer once started)."""
    subscriber = broker.subscriber(
        *topics,
        group_id=group,
        ack_policy=AckPolicy.MANUAL,
        batch=True,
        max_records=settings.consumer_batch_size,
        parser=_tolerant_parser,
        decoder=_raw_records,
        **consumer_options(settings),
    )

    rotation = RotationFollower(settings.partition_rotation_s) if settings.partition_rotation_s else None
    _hand_over_at_once(subscriber, FetchWait.from_settings(settings), rotation)
    committer = OffsetCommitter(subscriber, interval_s=settings.offset_commit_interval_s)
    gaps = GapGuard() if settings.refetch_gaps else None

    @subscriber  # type: ignore[untyped-decorator]
    async def _on_batch(raw: Any) -> None:
        records = [record_ref(r) for r in (raw if isinstance(raw, tuple) else (raw,))]
        if gaps is not None:
            admitted = gaps.admit(records)
            for (topic, partition), offset in admitted.seek.items():
                subscriber.consumer.seek(TopicPartition(topic, partition), offset)
            records = admitted.records
        if records:
            await consumer.handle_batch(records)
            committer.done(records)

    return subscriber, committer


ConsumerCheck = Callable[[Any], Awaitable[object]]


async def watch_consumer(subscriber: Any, checks: Sequence[ConsumerCheck], *, interval_s: float) -> None:
    """Run each check on the subscriber's aiokafka consumer every ``interval_s`` (once it has one)."""
    while True:
        await asyncio.sleep(interval_s)
        consumer = getattr(subscriber, "consumer", None)
        if consumer is not None:
            for check in checks:
                await check(consumer)
