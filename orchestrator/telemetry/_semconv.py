"""Attribute names: Sagaline's ``saga.*`` and the current OpenTelemetry messaging conventions, plus the
fix-up that rewrites the older names FastStream's Kafka telemetry middleware still emits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

# --- Sagaline --------------------------------------------------------------------------------------------
SAGA_ID = "saga.id"
SAGA_TYPE = "saga.type"
SAGA_STEP = "saga.step"
SAGA_ATTEMPT = "saga.attempt"
SAGA_OUTCOME = "saga.outcome"
SAGA_ERROR = "saga.error"
SAGA_COMPENSATION = "saga.compensation"
SAGA_COMMAND = "saga.command"
SAGA_REPLY = "saga.reply"
SAGA_PARTICIPANT = "saga.participant"
SAGA_DUPLICATE = "saga.duplicate"
SAGA_RETRY_DELAY = "saga.retry.delay_s"
SAGA_TIMEOUT_KIND = "saga.timeout.kind"
SAGA_TO_COMPENSATE = "saga.compensation.steps"
ERROR_TYPE = "error.type"

# --- OpenTelemetry messaging semantic conventions (v1.27 and later) -------------------------------------
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_DESTINATION_PARTITION_ID = "messaging.destination.partition.id"
MESSAGING_CONSUMER_GROUP_NAME = "messaging.consumer.group.name"
MESSAGING_KAFKA_MESSAGE_KEY = "messaging.kafka.message.key"
MESSAGING_KAFKA_OFFSET = "messaging.kafka.offset"
MESSAGING_KAFKA_MESSAGE_TOMBSTONE = "messaging.kafka.message.tombstone"
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_MESSAGE_CONVERSATION_ID = "messaging.message.conversation_id"
MESSAGING_MESSAGE_BODY_SIZE = "messaging.message.body.size"
MESSAGING_BATCH_MESSAGE_COUNT = "messaging.batch.message_count"

# --- Deprecated names still emitted by faststream.opentelemetry (0.7.x) ---------------------------------
DEPRECATED_OPERATION = "messaging.operation"  # → messaging.operation.type (+ .name)
DEPRECATED_DESTINATION_PUBLISH_NAME = "messaging.destination_publish.name"  # removed → messaging.destination.name
DEPRECATED_KAFKA_PARTITION = "messaging.kafka.destination.partition"  # → messaging.destination.partition.id
DEPRECATED_KAFKA_OFFSET = "messaging.kafka.message.offset"  # → messaging.kafka.offset
DEPRECATED_KAFKA_CONSUMER_GROUP = "messaging.kafka.consumer.group"  # → messaging.consumer.group.name
DEPRECATED_PAYLOAD_SIZE = "messaging.message.payload_size_bytes"  # → messaging.message.body.size

RENAMED = {
    DEPRECATED_DESTINATION_PUBLISH_NAME: MESSAGING_DESTINATION_NAME,
    DEPRECATED_KAFKA_OFFSET: MESSAGING_KAFKA_OFFSET,
    DEPRECATED_KAFKA_CONSUMER_GROUP: MESSAGING_CONSUMER_GROUP_NAME,
    DEPRECATED_PAYLOAD_SIZE: MESSAGING_MESSAGE_BODY_SIZE,
}
DEPRECATED = frozenset({*RENAMED, DEPRECATED_OPERATION, DEPRECATED_KAFKA_PARTITION})
# The old ``messaging.operation`` values; ``publish`` became ``send``.
OPERATION_TYPES = {"publish": "send", "create": "create", "process": "process", "receive": "receive"}
_OLD_SPAN_NAME_ACTIONS = {"publish": "send", "process": "process", "create": "create", "receive": "receive"}


def upgrade_attributes(attributes: Mapping[str, Any]) -> dict[str, Any] | None:
    """The attributes with deprecated messaging names replaced by current ones; None when nothing changes.
    A current name that is already present wins over the value of its deprecated predecessor."""
    if not DEPRECATED.intersection(attributes):
        return None
    upgraded = {k: v for k, v in attributes.items() if k not in DEPRECATED}
    for old, new in RENAMED.items():
        if old in attributes:
            upgraded.setdefault(new, attributes[old])
    if DEPRECATED_KAFKA_PARTITION in attributes:
        upgraded.setdefault(MESSAGING_DESTINATION_PARTITION_ID, str(attributes[DEPRECATED_KAFKA_PARTITION]))
    if DEPRECATED_OPERATION in attributes:
        operation = str(attributes[DEPRECATED_OPERATION])
        upgraded.setdefault(MESSAGING_OPERATION_TYPE, OPERATION_TYPES.get(operation, operation))
        upgraded.setdefault(MESSAGING_OPERATION_NAME, _OLD_SPAN_NAME_ACTIONS.get(operation, operation))
    return upgraded


def upgrade_span_name(name: str, attributes: Mapping[str, Any]) -> str:
    """FastStream names spans ``<destination> <action>``; the conventions say ``<operation> <destination>``.
    Only spans without ``messaging.operation.name`` (i.e. not written to current conventions) are renamed."""
    destination, _, action = name.rpartition(" ")
    if (
        destination
        and action in _OLD_SPAN_NAME_ACTIONS
        and MESSAGING_SYSTEM in attributes
        and MESSAGING_OPERATION_NAME not in attributes
    ):
        return f"{_OLD_SPAN_NAME_ACTIONS[action]} {destination}"
    return name


def upgrade_span(span: ReadableSpan) -> ReadableSpan:
    """The same span with current attribute names (and span name), or the span itself when already current."""
    attributes = span.attributes or {}
    name = upgrade_span_name(span.name, attributes)
    upgraded = upgrade_attributes(attributes)
    if name != span.name:
        action = span.name.rpartition(" ")[2]
        upgraded = dict(attributes) if upgraded is None else upgraded
        upgraded.setdefault(MESSAGING_OPERATION_TYPE, OPERATION_TYPES[action])
        upgraded.setdefault(MESSAGING_OPERATION_NAME, _OLD_SPAN_NAME_ACTIONS[action])
    if upgraded is None:
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=upgraded,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class SemconvUpgradingExporter(SpanExporter):
    """Wraps any span exporter; spans leave with current messaging conventions whoever created them."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([upgrade_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)
