"""Spans and metrics around Kafka: one consumer span per handled record, one producer span per relayed outbox
row, the participant's local transaction, dead letters and inbox duplicates.

Context travels in the W3C ``traceparent``/``tracestate``/``baggage`` headers (the global propagator). Every
function is a no-op returning its input unchanged when telemetry is not configured."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry import propagate
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind, Status, StatusCode

from contracts import FailureReply, header_name
from orchestrator.telemetry import _semconv as sc
from orchestrator.telemetry._state import STATE

if TYPE_CHECKING:
    from contracts import Envelope, Reply
    from orchestrator.messaging import Incoming, RecordRef

TRACEPARENT = "traceparent"
_SAGA_HEADERS = {
    header_name("saga_id"): sc.SAGA_ID,
    header_name("saga_type"): sc.SAGA_TYPE,
    header_name("step"): sc.SAGA_STEP,
}
_MESSAGE_ID = header_name("message_id")
_CORRELATION_ID = header_name("correlation_id")
_SAGA_ID = header_name("saga_id")
_ATTEMPT = header_name("attempt")
_TYPE = header_name("type")


def decode_headers(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in headers if v is not None}


def message_attributes(headers: Mapping[str, str], topic: str, key: str | None) -> dict[str, Any]:
    """Current messaging conventions plus ``saga.*`` read from the envelope headers."""
    attributes: dict[str, Any] = {sc.MESSAGING_SYSTEM: "kafka", sc.MESSAGING_DESTINATION_NAME: topic}
    if key is not None:
        attributes[sc.MESSAGING_KAFKA_MESSAGE_KEY] = key
    if _MESSAGE_ID in headers:
        attributes[sc.MESSAGING_MESSAGE_ID] = headers[_MESSAGE_ID]
    conversation = headers.get(_CORRELATION_ID) or headers.get(_SAGA_ID)
    if conversation:
        attributes[sc.MESSAGING_MESSAGE_CONVERSATION_ID] = conversation
    for header, attribute in _SAGA_HEADERS.items():
        if header in headers:
            attributes[attribute] = headers[header]
    if headers.get(_ATTEMPT, "").isdigit():
        attributes[sc.SAGA_ATTEMPT] = int(headers[_ATTEMPT])
    if _TYPE in headers:
        attributes["sagaline.message.type"] = headers[_TYPE]
    return attributes


class ConsumerSpan:
    """An open ``process <topic>`` span and the context (its parent's baggage included) to handle the record in."""

    def __init__(self, span: trace_api.Span, context: context_api.Context) -> None:
        self.span = span
        self.context = context

    def end(self) -> None:
        self.span.end()


def consumer_span(record: RecordRef) -> ConsumerSpan | None:
    """Start ``process <topic>`` (CONSUMER), a child of the context in the record's headers; None when not
    tracing. A batch opens one per record, handles each record inside its own (``handling``), and ends them
    all once the batch is committed or dead-lettered."""
    tracer = STATE.tracer
    if tracer is None:
        return None
    headers = decode_headers(record.headers)
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    attributes = message_attributes(headers, record.topic, key) | {
        sc.MESSAGING_OPERATION_NAME: "process",
        sc.MESSAGING_OPERATION_TYPE: "process",
        sc.MESSAGING_DESTINATION_PARTITION_ID: str(record.partition),
        sc.MESSAGING_KAFKA_OFFSET: record.offset,
    }
    if STATE.consumer_group:
        attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] = STATE.consumer_group
    if record.value is None:
        attributes[sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE] = True
    else:
        attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] = len(record.value)
    parent = propagate.extract(headers)  # the baggage too, not only the parent span
    span = tracer.start_span(f"process {record.topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes)
    return ConsumerSpan(span, trace_api.set_span_in_context(span, parent))


@contextmanager
def handling(span: ConsumerSpan | None) -> Iterator[None]:
    """Make a record's consumer span current (nothing when not tracing)."""
    if span is None:
        yield
        return
    token = context_api.attach(span.context)
    try:
        yield
    finally:
        context_api.detach(token)


@contextmanager
def consuming(record: RecordRef) -> Iterator[None]:
    """One record's consumer span, current for the block and ended after it."""
    span = consumer_span(record)
    try:
        with handling(span):
            yield
    except BaseException as exc:
        if span is not None:
            span.span.record_exception(exc)
            span.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        if span is not None:
            span.end()


@contextmanager
def publishing(rows: Sequence[Any]) -> Iterator[list[Mapping[str, str]]]:
    """Around the relay publishing outbox rows (``topic``, ``key``, ``headers``, optionally ``created_at``):
    yields the headers to send, row by row. A row that carries a ``traceparent`` gets a ``send <topic>``
    (PRODUCER) span as child of that stored context, and the record carries the span's own context."""
    tracer, instruments = STATE.tracer, STATE.metrics
    if tracer is None and instruments is None:
        yield [row.headers for row in rows]
        return
    spans: list[trace_api.Span] = []
    outgoing: list[Mapping[str, str]] = []
    for row in rows:
        headers: dict[str, str] = dict(row.headers)
        if tracer is not None and TRACEPARENT in headers:
            parent = propagate.extract(headers)
            attributes = message_attributes(headers, row.topic, row.key) | {
                sc.MESSAGING_OPERATION_NAME: "send",
                sc.MESSAGING_OPERATION_TYPE: "send",
            }
            span = tracer.start_span(f"send {row.topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes)
            propagate.inject(headers, context=trace_api.set_span_in_context(span, parent))
            spans.append(span)
        outgoing.append(headers)
    try:
        yield outgoing
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            span.end()
        raise
    for span in spans:
        span.end()
    if instruments is not None:
        now = time.time()
        for row in rows:
            labels = {"topic": row.topic}
            instruments.outbox_published.add(1, labels)
            created = getattr(row, "created_at", None)
            if isinstance(created, datetime):
                instruments.relay_delay.record(max(0.0, now - created.timestamp()), labels)


def trace_headers(fallback: Mapping[str, str]) -> dict[str, str]:
    """The current span's context as headers (so a reply continues from the local transaction), or
    ``fallback`` (the incoming headers, passed through untouched) when this process does not trace."""
    if STATE.tracer is None or not trace_api.get_current_span().get_span_context().is_valid:
        return dict(fallback)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def reply_headers(reply: Reply, fallback: Mapping[str, str]) -> dict[str, str]:
    """``trace_headers`` for a participant's reply, after noting the reply on the local-transaction span."""
    if STATE.tracer is None:
        return dict(fallback)
    span = trace_api.get_current_span()
    span.set_attribute(sc.SAGA_REPLY, reply.type_name())
    if isinstance(reply, FailureReply):
        span.set_attribute(sc.SAGA_ERROR, reply.reason)
        span.set_attribute(sc.ERROR_TYPE, reply.error_type or reply.type_name())
        span.set_status(Status(StatusCode.ERROR, reply.reason))
    return trace_headers(fallback)


def _local_transaction_attributes(participant: str, envelope: Envelope) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        sc.SAGA_PARTICIPANT: participant,
        sc.SAGA_COMMAND: envelope.type,
        sc.SAGA_ATTEMPT: envelope.attempt,
        sc.MESSAGING_MESSAGE_ID: envelope.message_id,
    }
    optional = {sc.SAGA_ID: envelope.saga_id, sc.SAGA_TYPE: envelope.saga_type, sc.SAGA_STEP: envelope.step}
    return attributes | {k: v for k, v in optional.items() if v is not None}


@contextmanager
def local_transaction(participant: str, incoming: Incoming) -> Iterator[None]:
    """``saga.local_transaction <Command>``: the participant's handler, inbox claim and reply, one commit."""
    tracer = STATE.tracer
    if tracer is None:
        yield
        return
    envelope = incoming.envelope
    attributes = _local_transaction_attributes(participant, envelope)
    with tracer.start_as_current_span(f"saga.local_transaction {envelope.type}", attributes=attributes):
        yield


@contextmanager
def local_transactions(participant: str, incomings: Sequence[Incoming]) -> Iterator[None]:
    """``local_transaction`` of commands a batch handler handles in one call: one span per command, each a child
    of its own record's consumer span, all ended after the call."""
    tracer = STATE.tracer
    if tracer is None:
        yield
        return
    spans = [
        tracer.start_span(
            f"saga.local_transaction {incoming.envelope.type}",
            context=incoming.span.context if incoming.span is not None else None,
            attributes=_local_transaction_attributes(participant, incoming.envelope),
        )
        for incoming in incomings
    ]
    try:
        yield
    except Exception as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        for span in spans:
            span.end()


def dead_lettered(record: RecordRef, reason: str, detail: str) -> None:
    """A record went to the DLQ: count it, and mark the consumer span."""
    if STATE.metrics is not None:
        STATE.metrics.dlq_messages.add(1, {"reason": reason, "topic": record.topic})
    if STATE.tracer is not None:
        span = trace_api.get_current_span()
        span.set_attribute(sc.ERROR_TYPE, reason)
        span.set_attribute("sagaline.dlq.reason", reason)
        span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {reason}: {detail[:300]}"))


def inbox_duplicate(consumer: str) -> None:
    """The inbox already holds this message id: count it, and mark the current span."""
    if STATE.metrics is not None:
        STATE.metrics.inbox_duplicates.add(1, {"consumer": consumer})
    if STATE.tracer is not None:
        trace_api.get_current_span().set_attribute(sc.SAGA_DUPLICATE, True)  # noqa: FBT003 - attribute value
