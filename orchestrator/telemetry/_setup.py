"""Configuring (and flushing) a process's tracer and meter from the standard OpenTelemetry variables."""

from __future__ import annotations

import atexit
import logging
import os
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from orchestrator.telemetry._semconv import SemconvUpgradingExporter
from orchestrator.telemetry._state import SCOPE, STATE, Instruments, SagaIdGenerator, TelemetryState

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader

    from orchestrator.settings import Settings

log = logging.getLogger(__name__)

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL = "http/protobuf"  # the OpenTelemetry specification's default
FLUSH_TIMEOUT_MS = 5_000


def service_name(service: str) -> str:
    """``OTEL_SERVICE_NAME`` when set, else ``sagaline-<service>``."""
    return os.environ.get("OTEL_SERVICE_NAME") or f"sagaline-{service}"


def otlp_protocol(signal: str) -> str:
    """``OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``http/protobuf``."""
    protocol = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or os.environ.get(PROTOCOL)
    protocol = (protocol or DEFAULT_PROTOCOL).strip().lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"{PROTOCOL}={protocol!r} is not supported; use one of {', '.join(PROTOCOLS)}")
    return protocol


def otlp_span_exporter() -> SpanExporter:
    """The OTLP exporter for the configured protocol; it reads endpoint, headers, timeout, TLS from the env."""
    if otlp_protocol("traces") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter  # noqa: PLC0415

    return HttpExporter()


def otlp_metric_exporter() -> MetricExporter:
    if otlp_protocol("metrics") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter  # noqa: PLC0415

        return OTLPMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter()


def enabled_by_env() -> bool:
    """Whether ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or a per-signal endpoint) asks for export at all."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(n) for n in (ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _exporter_wanted(variable: str) -> bool:
    """``OTEL_TRACES_EXPORTER=none`` / ``OTEL_METRICS_EXPORTER=none`` switch one signal off."""
    return os.environ.get(variable, "otlp").strip().lower() != "none"


def configure(
    service: str,
    *,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    consumer_group: str | None = None,
) -> TelemetryState:
    """Install a tracer (when there are span processors) and instruments (when there are metric readers)
    for this process's hooks. ``setup`` builds them from the environment; tests pass in-memory ones."""
    shutdown()
    resource = Resource.create(
        {
            "service.name": service_name(service),
            "service.namespace": "sagaline",
            "service.instance.id": str(uuid.uuid4()),
        }
    )
    STATE.service = service
    STATE.consumer_group = consumer_group
    if span_processors:
        tracer_provider = TracerProvider(resource=resource, id_generator=SagaIdGenerator(), shutdown_on_exit=False)
        for processor in span_processors:
            tracer_provider.add_span_processor(processor)
        STATE.tracer_provider = tracer_provider
        STATE.tracer = tracer_provider.get_tracer(SCOPE)
    if metric_readers:
        meter_provider = MeterProvider(metric_readers=metric_readers, resource=resource, shutdown_on_exit=False)
        STATE.meter_provider = meter_provider
        STATE.metrics = Instruments(meter_provider.get_meter(SCOPE))
    return STATE


def setup(service: str, settings: Settings | None = None) -> bool:
    """Configure this process from the environment; True when anything is exported.

    * ``OTEL_EXPORTER_OTLP_ENDPOINT`` set: traces and metrics over OTLP (``OTEL_EXPORTER_OTLP_PROTOCOL``
      ``grpc`` or ``http/protobuf``), service name ``sagaline-<service>`` unless ``OTEL_SERVICE_NAME`` is set.
    * ``SAGALINE_METRICS_PORT`` set: a Prometheus scrape endpoint on 0.0.0.0:<port>/metrics.
    * neither: nothing is configured and every hook returns at once.
    """
    processors: list[SpanProcessor] = []
    readers: list[MetricReader] = []
    sinks: list[str] = []
    if enabled_by_env() and _exporter_wanted("OTEL_TRACES_EXPORTER"):
        processors.append(BatchSpanProcessor(SemconvUpgradingExporter(otlp_span_exporter())))
        sinks.append(f"traces over OTLP {otlp_protocol('traces')}")
    if enabled_by_env() and _exporter_wanted("OTEL_METRICS_EXPORTER"):
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415

        readers.append(PeriodicExportingMetricReader(otlp_metric_exporter()))
        sinks.append(f"metrics over OTLP {otlp_protocol('metrics')}")
    port = settings.metrics_port if settings is not None else None
    if port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415

        readers.append(PrometheusMetricReader(scope_info_enabled=False))
        sinks.append(f"Prometheus metrics on 0.0.0.0:{port}/metrics")
    if not processors and not readers:
        return False
    group = settings.group_id(service) if settings is not None else None
    state = configure(service, span_processors=processors, metric_readers=readers, consumer_group=group)
    if port is not None:
        _serve_prometheus(port)
    if state.tracer_provider is not None:
        trace_api.set_tracer_provider(state.tracer_provider)  # for third-party instrumentation, once per process
    if state.meter_provider is not None:
        metrics_api.set_meter_provider(state.meter_provider)
    atexit.register(shutdown)
    log.info(
        "telemetry for %s: %s (OTLP endpoint %s)", service_name(service), ", ".join(sinks), os.environ.get(ENDPOINT)
    )
    return True


def _serve_prometheus(port: int) -> None:
    from prometheus_client import start_http_server  # noqa: PLC0415

    try:
        server, thread = start_http_server(port, addr="0.0.0.0")  # noqa: S104 - scraped from other containers
    except OSError as exc:
        log.error("cannot serve Prometheus metrics on port %d: %s", port, exc)  # noqa: TRY400 - no traceback needed
        return

    def close() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    STATE.closers.append(close)


def shutdown() -> None:
    """Flush and stop everything ``setup``/``configure`` started; afterwards every hook is a no-op again."""
    tracer_provider, meter_provider, closers = STATE.tracer_provider, STATE.meter_provider, STATE.closers
    STATE.tracer, STATE.metrics, STATE.tracer_provider, STATE.meter_provider = None, None, None, None
    STATE.closers = []
    for close in closers:
        try:
            close()
        except Exception:
            log.exception("stopping the metrics endpoint failed")
    if tracer_provider is not None:
        tracer_provider.force_flush(FLUSH_TIMEOUT_MS)
        tracer_provider.shutdown()
    if meter_provider is not None:
        meter_provider.shutdown(timeout_millis=FLUSH_TIMEOUT_MS)
