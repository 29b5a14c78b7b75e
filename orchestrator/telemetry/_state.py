"""The process's telemetry state: one tracer and one set of instruments, or nothing at all.

Every hook in this package starts with ``if STATE.tracer is None`` / ``if STATE.metrics is None``: when
nothing is configured the hooks return at once, so an unconfigured process pays one attribute read per hook."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

SCOPE = "sagaline"
# Step latencies run from milliseconds (a local broker) to the step timeout and beyond.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

_FORCED_SPAN_ID: ContextVar[int | None] = ContextVar("sagaline_forced_span_id", default=None)


class SagaIdGenerator(RandomIdGenerator):
    """Random ids, except while ``forced_span_id`` is active: a step's span is started in one transaction
    (its id goes into the command's ``traceparent``) and ended in a later one, possibly in another process."""

    def generate_span_id(self) -> int:
        forced = _FORCED_SPAN_ID.get()
        return forced if forced is not None else super().generate_span_id()


@contextmanager
def forced_span_id(span_id: int) -> Iterator[None]:
    token = _FORCED_SPAN_ID.set(span_id)
    try:
        yield
    finally:
        _FORCED_SPAN_ID.reset(token)


def derived_span_id(trace_id: int, *parts: object) -> int:
    """A span id every process computes alike from the trace id and the command's identity."""
    key = "/".join([f"{trace_id:032x}", *map(str, parts)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") or 1


class Instruments:
    """Every Sagaline metric. Names are OTel instrument names; the Prometheus exporter turns
    ``sagaline.sagas.started`` into ``sagaline_sagas_started_total`` and ``s`` units into ``_seconds``."""

    def __init__(self, meter: metrics_api.Meter) -> None:
        self.sagas_started = meter.create_counter(
            "sagaline.sagas.started", unit="{saga}", description="Sagas started, by saga type."
        )
        self.sagas_completed = meter.create_counter(
            "sagaline.sagas.completed", unit="{saga}", description="Sagas that completed every step."
        )
        self.sagas_compensated = meter.create_counter(
            "sagaline.sagas.compensated", unit="{saga}", description="Sagas undone by their compensations."
        )
        self.sagas_failed = meter.create_counter(
            "sagaline.sagas.failed", unit="{saga}", description="Sagas whose compensation gave up (operator needed)."
        )
        self.step_latency = meter.create_histogram(
            "sagaline.step.latency",
            unit="s",
            description="From a step's command being sent to its reply being handled, per attempt.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.retries = meter.create_counter(
            "sagaline.retries",
            unit="{command}",
            description="Commands sent again (attempt > 1) after a failure or timeout.",
        )
        self.timeouts = meter.create_counter(
            "sagaline.timeouts", unit="{timeout}", description="Steps whose reply did not come in time; sagas expired."
        )
        self.dlq_messages = meter.create_counter(
            "sagaline.dlq.messages", unit="{message}", description="Records this service sent to the dead-letter topic."
        )
        self.inbox_duplicates = meter.create_counter(
            "sagaline.inbox.duplicates",
            unit="{message}",
            description="Messages seen before, suppressed by the inbox.",
        )
        self.outbox_published = meter.create_counter(
            "sagaline.outbox.published", unit="{message}", description="Outbox rows the relay published."
        )
        self.relay_delay = meter.create_histogram(
            "sagaline.relay.delay",
            unit="s",
            description="From an outbox row's commit to its broker acknowledgement.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self.outbox_backlog_rows: dict[str, int] = {}
        self.relay_lag_s: dict[str, float] = {}
        meter.create_observable_gauge(
            "sagaline.outbox.backlog",
            callbacks=[self._observe_backlog],
            unit="{row}",
            description="Outbox rows committed but not yet published.",
        )
        meter.create_observable_gauge(
            "sagaline.relay.lag",
            callbacks=[self._observe_lag],
            unit="s",
            description="Age of the oldest unpublished outbox row (0 when the outbox is empty).",
        )

    def _observe_backlog(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(rows, {"outbox": outbox}) for outbox, rows in list(self.outbox_backlog_rows.items())]

    def _observe_lag(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(lag, {"outbox": outbox}) for outbox, lag in list(self.relay_lag_s.items())]


@dataclass
class TelemetryState:
    service: str = ""
    consumer_group: str | None = None
    tracer: trace_api.Tracer | None = None
    metrics: Instruments | None = None
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)


STATE = TelemetryState()
