"""``telemetry.setup`` from the environment: OTLP over gRPC and over HTTP/protobuf to in-test receivers,
the service name, and the Prometheus endpoint."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import telemetry
from orchestrator.settings import Settings
from tests.support.otlp import OtlpGrpcReceiver, OtlpHttpReceiver, SpanSink


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    yield
    telemetry.shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_setup_exports_spans_over_otlp(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver: SpanSink = OtlpGrpcReceiver() if protocol == "grpc" else OtlpHttpReceiver()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)  # type: ignore[attr-defined]
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        assert telemetry.setup("payment") is True
        tracer = telemetry.STATE.tracer
        assert tracer is not None
        tracer.start_span("hello", attributes={"messaging.operation": "publish", "messaging.system": "kafka"}).end()
        assert telemetry.STATE.metrics is not None
        telemetry.STATE.metrics.sagas_started.add(1, {"saga_type": "order_fulfillment"})
        telemetry.shutdown()  # flushes
        (span,) = receiver.snapshot()
        assert span.service == "sagaline-payment"
        assert span.name == "hello"
        assert span.attributes == {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
        }, "the OTLP pipeline upgrades deprecated messaging attributes"
        assert receiver.metric_requests >= 1, "metrics go over OTLP too, flushed at shutdown"
    finally:
        receiver.close()  # type: ignore[attr-defined]


def test_otel_service_name_wins_and_bad_protocols_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "custom")
    assert telemetry.service_name("order") == "custom"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="grpc, http/protobuf"):
        telemetry.otlp_protocol("traces")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_prometheus_endpoint_serves_the_instruments() -> None:
    port = _free_port()
    assert telemetry.setup("orchestrator", Settings(metrics_port=port)) is True
    assert telemetry.STATE.tracer is None, "no OTLP endpoint: no tracing"
    instruments = telemetry.STATE.metrics
    assert instruments is not None
    instruments.sagas_started.add(2, {"saga_type": "order_fulfillment"})
    instruments.step_latency.record(0.3, {"saga_type": "order_fulfillment", "step": "create_order", "phase": "forward"})
    instruments.outbox_backlog_rows["sagaline"] = 4
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("sagaline_sagas_started_total", (("saga_type", "order_fulfillment"),))] == 2
    latency = (("phase", "forward"), ("saga_type", "order_fulfillment"), ("step", "create_order"))
    assert samples[("sagaline_step_latency_seconds_count", latency)] == 1
    assert samples[("sagaline_step_latency_seconds_bucket", (("le", "0.5"), *latency))] == 1
    assert samples[("sagaline_outbox_backlog", (("outbox", "sagaline"),))] == 4
    telemetry.shutdown()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
