"""Traces and metrics for every Sagaline process (docs/observability.md).

``setup(service, settings)`` configures OTLP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and a
Prometheus endpoint when ``SAGALINE_METRICS_PORT`` is set; otherwise nothing is configured and every hook
below returns at once. ``shutdown()`` flushes. The hooks are called from the messaging kernel, the saga
manager and the participant kit."""

from orchestrator.telemetry._messaging import (
    ConsumerSpan,
    consumer_span,
    consuming,
    dead_lettered,
    handling,
    inbox_duplicate,
    local_transaction,
    local_transactions,
    publishing,
    reply_headers,
    trace_headers,
)
from orchestrator.telemetry._monitor import background_tasks, monitor_outbox, sample_outbox
from orchestrator.telemetry._saga import (
    AfterCommit,
    SagaStart,
    jaeger_trace_url,
    run_after_commit,
    saga_start,
    saga_trace_id,
    saga_transition,
    span_context_of,
    trace_id_of,
)
from orchestrator.telemetry._semconv import SemconvUpgradingExporter, upgrade_attributes, upgrade_span
from orchestrator.telemetry._setup import configure, enabled_by_env, otlp_protocol, service_name, setup, shutdown
from orchestrator.telemetry._state import STATE, Instruments

__all__ = [
    "STATE",
    "AfterCommit",
    "ConsumerSpan",
    "Instruments",
    "SagaStart",
    "SemconvUpgradingExporter",
    "background_tasks",
    "configure",
    "consumer_span",
    "consuming",
    "dead_lettered",
    "enabled_by_env",
    "handling",
    "inbox_duplicate",
    "jaeger_trace_url",
    "local_transaction",
    "local_transactions",
    "monitor_outbox",
    "otlp_protocol",
    "publishing",
    "reply_headers",
    "run_after_commit",
    "saga_start",
    "saga_trace_id",
    "saga_transition",
    "sample_outbox",
    "service_name",
    "setup",
    "shutdown",
    "span_context_of",
    "trace_headers",
    "trace_id_of",
    "upgrade_attributes",
    "upgrade_span",
]
