"""Telemetry without infrastructure: the hooks' spans and attributes, the step-span handshake between the
command's ``traceparent`` and the span ended later, metrics from history, FastStream's old names fixed up,
and the zero-cost path when nothing is configured."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import baggage, propagate
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts import Address, LineItem, OrderCreated, PlaceOrder, Topics
from orchestrator import definition as engine
from orchestrator import telemetry
from orchestrator.messaging import RecordRef, kafka_headers
from orchestrator.runtime._outbound import outbox_records
from orchestrator.sagas import ORDER_FULFILLMENT
from orchestrator.telemetry import _saga
from orchestrator.telemetry._semconv import DEPRECATED, SemconvUpgradingExporter, upgrade_attributes

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
READER: list[InMemoryMetricReader] = []


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    READER[:] = [InMemoryMetricReader()]
    telemetry.configure(
        "test",
        span_processors=[SimpleSpanProcessor(SemconvUpgradingExporter(spans))],
        metric_readers=READER,
        consumer_group="sagaline-test",
    )
    yield spans
    telemetry.shutdown()


def _record(headers: dict[str, str], topic: str = "order.commands") -> RecordRef:
    return RecordRef(
        topic=topic,
        partition=3,
        offset=42,
        key=b"saga-1",
        value=b'{"x": 1}',
        headers=tuple(kafka_headers(headers)),
    )


def _metrics() -> dict[tuple[str, tuple[tuple[str, Any], ...]], Any]:
    (reader,) = READER
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None) if hasattr(point, "value") else point.count
                    found[(metric.name, tuple(sorted(point.attributes.items())))] = value
    return found


def test_nothing_configured_means_every_hook_passes_through() -> None:
    telemetry.shutdown()
    assert telemetry.STATE.tracer is None
    assert telemetry.STATE.metrics is None
    headers = {"traceparent": TRACEPARENT}
    with telemetry.consuming(_record(headers)):
        assert not trace_api.get_current_span().get_span_context().is_valid
    rows = [dataclasses.make_dataclass("Row", ["topic", "key", "headers"])("t", None, headers)]
    with telemetry.publishing(rows) as outgoing:
        assert outgoing[0] is headers
    assert telemetry.saga_start(headers, saga_id="s", saga_type="t").context == headers
    assert telemetry.trace_headers(headers) == headers
    assert telemetry.background_tasks(None, None) == []  # type: ignore[arg-type]


def test_setup_without_endpoint_or_port_configures_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert telemetry.setup("orchestrator") is False
    assert telemetry.STATE.tracer is None


def test_consumer_span_continues_the_record_and_hands_on_its_baggage(exporter: InMemorySpanExporter) -> None:
    headers = {
        "traceparent": TRACEPARENT,
        "baggage": "tenant=acme",
        "sagaline-message-id": "m-1",
        "sagaline-saga-id": "saga-1",
        "sagaline-correlation-id": "saga-1",
        "sagaline-saga-type": "order_fulfillment",
        "sagaline-step": "create_order",
        "sagaline-attempt": "2",
    }
    with telemetry.consuming(_record(headers)):
        outgoing = telemetry.trace_headers({})
    (span,) = exporter.get_finished_spans()
    assert span.name == "process order.commands"
    assert span.kind is SpanKind.CONSUMER
    assert span.parent is not None
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert (
        dict(span.attributes or {}).items()
        >= {
            "messaging.system": "kafka",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": "order.commands",
            "messaging.destination.partition.id": "3",
            "messaging.kafka.offset": 42,
            "messaging.kafka.message.key": "saga-1",
            "messaging.message.id": "m-1",
            "messaging.message.conversation_id": "saga-1",
            "messaging.consumer.group.name": "sagaline-test",
            "saga.id": "saga-1",
            "saga.step": "create_order",
            "saga.attempt": 2,
        }.items()
    )
    assert outgoing["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"
    assert outgoing["baggage"] == "tenant=acme"


def test_relay_span_is_a_child_of_the_stored_context_and_the_record_names_it(exporter: InMemorySpanExporter) -> None:
    row_type = dataclasses.make_dataclass("Row", ["topic", "key", "headers", "created_at"])
    rows = [
        row_type("payment.commands", "saga-1", {"traceparent": TRACEPARENT, "sagaline-saga-id": "saga-1"}, NOW),
        row_type("saga.events", "saga-2", {"sagaline-saga-id": "saga-2"}, NOW),  # no trace to continue: no span
    ]
    with telemetry.publishing(rows) as outgoing:
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "send payment.commands"
    assert span.kind is SpanKind.PRODUCER
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert outgoing[0]["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"
    assert outgoing[1] == rows[1].headers
    assert (span.attributes or {})["messaging.operation.name"] == "send"
    assert _metrics()[("sagaline.outbox.published", (("topic", "payment.commands"),))] == 1


def _order() -> PlaceOrder:
    return PlaceOrder(
        order_id="o-1",
        customer_id="cust-1",
        items=(LineItem(sku="SKU-1", quantity=1, unit_price_cents=100),),
        address=Address(line1="1 Main St", city="Springfield", country="DE"),
        saga_id="o-1",
    )


def test_the_command_traceparent_names_the_step_span_ended_at_the_reply(exporter: InMemorySpanExporter) -> None:
    started = engine.start(ORDER_FULFILLMENT, "o-1", _order(), NOW)
    stored = {"traceparent": TRACEPARENT}
    records = outbox_records(started, Topics(), causation_id=None, trace_context=stored)
    saga = _saga.span_context_of(stored)
    assert saga is not None
    (command,) = [r for r in _saga._stamp(records, started, saga) if r.topic == "order.commands"]
    events = [r for r in _saga._stamp(records, started, saga) if r.topic == "saga.events"]
    assert events
    assert all(r.headers["traceparent"] == TRACEPARENT for r in events)  # events hang off saga.start
    step_span_id = command.headers["traceparent"].split("-")[2]
    assert command.headers["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert step_span_id != PARENT_ID

    before = started.state
    replied = engine.on_reply(
        ORDER_FULFILLMENT,
        before,
        OrderCreated(order_id="o-1"),
        causation_id=before.pending_command_id,
        attempt=1,
        now=NOW + timedelta(seconds=1),
    )
    pending = _saga._pending(before, replied.state)
    assert pending is not None
    pending = dataclasses.replace(pending, sent_at=NOW, command="CreateOrder")
    recorder = _saga._Recorder(replied.state, replied.history, pending, began=0)
    context = trace_api.set_span_in_context(trace_api.NonRecordingSpan(saga))
    recorder.spans(telemetry.STATE.tracer, saga, saga_parent=context, parent=context, end=_saga._ns(NOW) + 10**9)  # type: ignore[arg-type]
    recorder.metrics(telemetry.STATE.metrics)  # type: ignore[arg-type]
    (step,) = [s for s in exporter.get_finished_spans() if s.name == "saga.step create_order"]
    assert f"{step.context.span_id:016x}" == step_span_id
    assert step.parent is not None
    assert f"{step.parent.span_id:016x}" == PARENT_ID
    assert step.start_time == _saga._ns(NOW)
    assert (
        dict(step.attributes or {}).items()
        >= {
            "saga.id": "o-1",
            "saga.type": "order_fulfillment",
            "saga.step": "create_order",
            "saga.attempt": 1,
            "saga.reply": "OrderCreated",
            "saga.command": "CreateOrder",
        }.items()
    )
    latency = (
        "sagaline.step.latency",
        (("phase", "forward"), ("saga_type", "order_fulfillment"), ("step", "create_order")),
    )
    assert _metrics()[latency] == 1


def test_retry_timeout_compensation_and_outcome_spans_and_counters(exporter: InMemorySpanExporter) -> None:
    state = engine.start(ORDER_FULFILLMENT, "o-1", _order(), NOW).state
    history = (
        engine.HistoryEntry(type="started"),
        engine.HistoryEntry(type="retry_scheduled", step="charge_payment", payload={"attempt": 1, "reason": "glitch"}),
        engine.HistoryEntry(type="command_sent", step="charge_payment", payload={"attempt": 2}),
        engine.HistoryEntry(type="timed_out", step="schedule_shipment", payload={"attempt": 1}),
        engine.HistoryEntry(type="compensation_started", step="schedule_shipment", payload={"reason": "no"}),
        engine.HistoryEntry(type="compensated"),
    )
    recorder = _saga._Recorder(state, history, None, began=1)
    saga = _saga.span_context_of({"traceparent": TRACEPARENT})
    assert saga is not None
    context = trace_api.set_span_in_context(trace_api.NonRecordingSpan(saga))
    recorder.spans(telemetry.STATE.tracer, saga, saga_parent=context, parent=context, end=2)  # type: ignore[arg-type]
    recorder.metrics(telemetry.STATE.metrics)  # type: ignore[arg-type]
    spans = {s.name: dict(s.attributes or {}) for s in exporter.get_finished_spans()}
    assert (
        spans["saga.retry charge_payment"].items()
        >= {"saga.attempt": 2, "saga.error": "glitch", "saga.id": "o-1"}.items()
    )
    assert spans["saga.timeout schedule_shipment"].items() >= {"saga.attempt": 1, "saga.timeout.kind": "step"}.items()
    assert spans["saga.compensation schedule_shipment"]["saga.error"] == "no"
    assert spans["saga.end order_fulfillment"]["saga.outcome"] == "compensated"
    metrics = _metrics()
    kind = (("saga_type", "order_fulfillment"),)
    assert metrics[("sagaline.sagas.started", kind)] == 1
    assert metrics[("sagaline.sagas.compensated", kind)] == 1
    assert metrics[("sagaline.retries", (*kind, ("step", "charge_payment")))] == 1
    assert metrics[("sagaline.timeouts", (*kind, ("step", "schedule_shipment")))] == 1


def test_faststream_telemetry_middleware_spans_leave_with_current_names(exporter: InMemorySpanExporter) -> None:
    old = {
        "messaging.system": "kafka",
        "messaging.operation": "publish",
        "messaging.destination_publish.name": "orders",
        "messaging.kafka.destination.partition": 1,
        "messaging.kafka.message.offset": 7,
        "messaging.message.payload_size_bytes": 12,
    }
    assert upgrade_attributes(old) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "orders",
        "messaging.destination.partition.id": "1",
        "messaging.kafka.offset": 7,
        "messaging.message.body.size": 12,
    }
    assert upgrade_attributes({"messaging.operation.name": "send"}) is None


async def test_faststream_kafka_middleware_through_the_upgrading_exporter(exporter: InMemorySpanExporter) -> None:
    broker = KafkaBroker(middlewares=(KafkaTelemetryMiddleware(tracer_provider=telemetry.STATE.tracer_provider),))

    @broker.subscriber("orders")  # type: ignore[untyped-decorator]
    async def handle(body: str) -> None:
        pass

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish("hello", "orders", key=b"k")
    spans: list[ReadableSpan] = list(exporter.get_finished_spans())
    names = {s.name for s in spans}
    assert {"send orders", "process orders"} <= names, names
    for span in spans:
        attributes = dict(span.attributes or {})
        assert not DEPRECATED.intersection(attributes), (span.name, attributes)
        assert attributes.get("messaging.destination.name") == "orders", (span.name, attributes)
    process = next(s for s in spans if s.name == "process orders")
    assert dict(process.attributes or {})["messaging.operation.type"] == "process"


def test_saga_start_is_a_child_of_the_consumer_and_keeps_baggage(exporter: InMemorySpanExporter) -> None:
    token = context_api.attach(baggage.set_baggage("tenant", "acme", propagate.extract({"traceparent": TRACEPARENT})))
    try:
        stored = telemetry.saga_start({}, saga_id="s-1", saga_type="order_fulfillment").context
    finally:
        context_api.detach(token)
    assert stored["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert stored["baggage"] == "tenant=acme"
    assert telemetry.trace_id_of(stored) == TRACE_ID
    assert telemetry.trace_id_of({}) is None
