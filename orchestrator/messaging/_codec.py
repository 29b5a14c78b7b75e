"""Kafka record ↔ (envelope, message). The only place that knows the wire format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from contracts import REGISTRY, ContractError, Envelope, EnvelopeError, Message

if TYPE_CHECKING:
    from orchestrator.telemetry import ConsumerSpan

Headers = Sequence[tuple[str, bytes]]
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")


@dataclass(frozen=True, kw_only=True)
class RecordRef:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def derived_message_id(self) -> str:
        """For producers that send no id: unique per record, so a redelivery is still deduplicated."""
        return f"kafka:{self.topic}:{self.partition}:{self.offset}"


@dataclass(frozen=True, kw_only=True)
class Incoming:
    record: RecordRef
    envelope: Envelope
    message: Message
    trace_headers: Mapping[str, str]
    span: ConsumerSpan | None = None  # the record's consumer span (tracing only): ``telemetry.handling(span)``


class DecodeError(ValueError):
    """The record cannot be turned into a message; ``reason`` is a short code put in the DLQ headers."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode(
    record: RecordRef, *, require_envelope: bool, max_bytes: int | None = None, span: ConsumerSpan | None = None
) -> Incoming:
    """Parse headers and body. Without ``require_envelope`` a bare JSON body is accepted (``saga.start``);
    ``span``: the record's consumer span, carried by the result."""
    if record.value is None:
        raise DecodeError("undecodable", "record has no value (tombstone)")
    if max_bytes is not None and len(record.value) > max_bytes:
        raise DecodeError("oversized", f"{len(record.value)} bytes > {max_bytes}")
    try:
        values: dict[str, object] = dict(Envelope.header_values(record.headers))
        message = REGISTRY.decode(record.value, type_hint=values.get("type"))  # type: ignore[arg-type]
    except EnvelopeError as exc:
        raise DecodeError("bad-envelope", str(exc)) from exc
    except ContractError as exc:
        raise DecodeError(exc.reason, exc.detail) from exc
    if require_envelope and "message_id" not in values:
        raise DecodeError("bad-envelope", "missing header sagaline-message-id")
    values.setdefault("message_id", record.derived_message_id)
    values["type"] = message.type_name()
    try:
        envelope = Envelope.from_values(values)
    except EnvelopeError as exc:
        raise DecodeError("bad-envelope", str(exc)) from exc
    trace = {k: v.decode("utf-8", "replace") for k, v in record.headers if k in TRACE_HEADERS and v is not None}
    return Incoming(record=record, envelope=envelope, message=message, trace_headers=trace, span=span)


def encode_body(message: Message) -> dict[str, object]:
    """The JSON object stored in the outbox ``payload`` column and sent as the record value."""
    return message.model_dump(mode="json")


def body_bytes(payload: Mapping[str, object]) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)


def kafka_headers(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode("utf-8")) for k, v in headers.items()]
