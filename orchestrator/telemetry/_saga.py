"""The saga's own spans and metrics, derived from what the engine decided (``Actions``) after it is committed.

One trace per saga: ``saga.start`` is started when the start command is handled and its context is what the
orchestrator stores in ``saga_instance.trace_context``. Every later span of the saga descends from it:

* ``saga.step <step>`` / ``saga.compensate <step>``: from the command being sent to its reply being handled (or
  its timeout). Its span id is derived from the trace id, the command's message id and the attempt, so the
  command's ``traceparent`` can name it when the command is written to the outbox, and whichever process
  handles the reply (after a restart, too) ends the very same span.
* ``saga.retry``, ``saga.timeout``, ``saga.compensation``, ``saga.cancel``, ``saga.resume``, ``saga.end``: one
  per history entry of that kind, children of the span that handled the input (or of ``saga.start`` for the
  deadline sweeper and operator commands).

Spans and metrics are queued on the transaction's ``after_commit`` list and emitted once it commits, so a
rolled-back transition leaves no trace."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry import propagate
from opentelemetry import trace as trace_api
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts import header_name
from orchestrator.definition import Actions, HistoryEntry, SagaState, SagaStatus
from orchestrator.persistence import saga_event, saga_instance
from orchestrator.telemetry import _semconv as sc
from orchestrator.telemetry._state import STATE, Instruments, derived_span_id, forced_span_id

if TYPE_CHECKING:
    from orchestrator.messaging import OutboxRecord

log = logging.getLogger(__name__)

_SENT = ("command_sent", "compensation_sent")
_OUTCOMES = ("completed", "compensated", "failed")
_MARKERS = {
    "retry_scheduled": "saga.retry",
    "timed_out": "saga.timeout",
    "expired": "saga.timeout",
    "compensation_started": "saga.compensation",
    "cancel_requested": "saga.cancel",
    "resumed": "saga.resume",
    **dict.fromkeys(_OUTCOMES, "saga.end"),
}
_MESSAGE_ID = header_name("message_id")
_ATTEMPT = header_name("attempt")


def span_context_of(trace_context: Mapping[str, str] | None) -> SpanContext | None:
    """The span context a stored (or received) ``traceparent`` names, if valid."""
    if not trace_context or "traceparent" not in trace_context:
        return None
    context = trace_api.get_current_span(propagate.extract(dict(trace_context))).get_span_context()
    return context if context.is_valid else None


def trace_id_of(trace_context: Mapping[str, str] | None) -> str | None:
    """The 32-hex-digit trace id of a saga's stored trace context (``saga_instance.trace_context``)."""
    context = span_context_of(trace_context)
    return f"{context.trace_id:032x}" if context is not None else None


async def saga_trace_id(db: AsyncEngine, saga_id: str) -> str | None:
    """The trace id of a saga, read from its stored trace context (None: unknown saga, or never traced)."""
    async with db.connect() as conn:
        stored = (
            await conn.execute(select(saga_instance.c.trace_context).where(saga_instance.c.id == saga_id))
        ).scalar_one_or_none()
    return trace_id_of(stored)


def jaeger_trace_url(trace_id: str, base: str = "http://localhost:16686") -> str:
    """Where Jaeger (docker-compose: http://localhost:16686) shows a trace."""
    return f"{base.rstrip('/')}/trace/{trace_id}"


@dataclass(frozen=True)
class SagaStart:
    """What starting a saga stores (``context``) and, when tracing, its ``saga.start`` span, which the start's
    transition (``saga_transition(start=…)``) ends once the transaction commits."""

    context: dict[str, str]
    span: trace_api.Span | None = None


def saga_start(incoming: Mapping[str, str], *, saga_id: str, saga_type: str) -> SagaStart:
    """The trace context to store with a new saga. Tracing: a ``saga.start`` span, child of the current span
    (which continues the start command's ``traceparent`` if it had one). Not tracing: the incoming W3C
    headers unchanged, so the saga still continues a caller's trace."""
    tracer = STATE.tracer
    if tracer is None:
        return SagaStart(dict(incoming))
    span = tracer.start_span(
        f"saga.start {saga_type}",
        attributes={sc.SAGA_ID: saga_id, sc.SAGA_TYPE: saga_type, sc.MESSAGING_MESSAGE_CONVERSATION_ID: saga_id},
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace_api.set_span_in_context(span))
    return SagaStart(carrier, span)


@dataclass(frozen=True)
class _Pending:
    """The command attempt a transition stops waiting for."""

    message_id: str
    attempt: int
    step: str
    compensation: bool
    sent_at: datetime | None = None
    command: str | None = None


def _pending(before: SagaState | None, after: SagaState) -> _Pending | None:
    if before is None or before.waiting != "reply" or before.pending_command_id is None or before.step is None:
        return None
    still_waiting = (
        after.waiting == "reply"
        and after.pending_command_id == before.pending_command_id
        and after.attempt == before.attempt
    )
    if still_waiting:
        return None
    return _Pending(before.pending_command_id, before.attempt, before.step, before.status is SagaStatus.COMPENSATING)


async def _when_sent(executor: AsyncConnection, saga_id: str, pending: _Pending) -> _Pending:
    payload = saga_event.c.payload
    row = (
        await executor.execute(
            select(saga_event.c.at, payload["command"].astext)
            .where(
                (saga_event.c.saga_id == saga_id)
                & saga_event.c.type.in_(_SENT)
                & (payload["message_id"].astext == pending.message_id)
                & (payload["attempt"].astext == str(pending.attempt)),
            )
            .order_by(saga_event.c.seq.desc())
            .limit(1),
        )
    ).first()
    return pending if row is None else dataclasses.replace(pending, sent_at=row[0], command=row[1])


def _stamp(records: list[OutboxRecord], actions: Actions, saga: SpanContext) -> list[OutboxRecord]:
    """Each command's ``traceparent`` names its own (future) step span instead of the saga's."""
    commands = {(c.message_id, str(c.attempt)) for c in actions.commands}
    stamped = []
    for record in records:
        identity = (record.headers.get(_MESSAGE_ID), record.headers.get(_ATTEMPT))
        if identity in commands:
            span_id = derived_span_id(saga.trace_id, *identity)
            traceparent = f"00-{saga.trace_id:032x}-{span_id:016x}-{int(saga.trace_flags):02x}"
            record = dataclasses.replace(record, headers={**record.headers, "traceparent": traceparent})  # noqa: PLW2901
        stamped.append(record)
    return stamped


AfterCommit = list[Callable[[], None]]


def run_after_commit(callbacks: AfterCommit) -> None:
    """Run what ``saga_transition`` queued, once the transaction committed; telemetry never fails a commit."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("recording telemetry after commit failed")


async def saga_transition(
    executor: AsyncConnection,
    before: SagaState | None,
    actions: Actions,
    *,
    trace: Mapping[str, str] | None,
    records: list[OutboxRecord],
    after_commit: AfterCommit,
    start: SagaStart | None = None,
) -> list[OutboxRecord]:
    """Called by the manager inside a transition's transaction (with the input's consumer span current) with
    the outbox rows it is about to write; returns them with per-command trace context, and queues the spans
    and metrics on ``after_commit``, which the caller runs once the transaction commits."""
    tracer, instruments = STATE.tracer, STATE.metrics
    if tracer is None and instruments is None:
        return records
    state = actions.state
    saga = span_context_of(trace)
    pending = _pending(before, state)
    if pending is not None:
        pending = await _when_sent(executor, state.saga_id, pending)
    start_span = start.span if start is not None else None
    recorder = _Recorder(state, actions.history, pending, time.time_ns())
    if tracer is not None and saga is not None:
        records = _stamp(records, actions, saga)
        current = trace_api.get_current_span()
        recorder.annotate(current)
        if current.get_span_context().trace_id == saga.trace_id:
            parent = trace_api.set_span_in_context(current)
        else:
            parent = trace_api.set_span_in_context(NonRecordingSpan(saga))
        saga_parent = trace_api.set_span_in_context(NonRecordingSpan(saga))

        def emit_spans() -> None:
            end = time.time_ns()
            if start_span is not None:
                start_span.end(end)
            recorder.spans(tracer, saga, saga_parent=saga_parent, parent=parent, end=end)

        after_commit.append(emit_spans)
    elif start_span is not None:
        after_commit.append(start_span.end)
    if instruments is not None:
        after_commit.append(lambda: recorder.metrics(instruments))
    return records


def _scalars(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if isinstance(v, str | int | float | bool)}


@dataclass
class _Recorder:
    state: SagaState
    history: Sequence[HistoryEntry]
    pending: _Pending | None
    began: int

    @property
    def base(self) -> dict[str, Any]:
        return {sc.SAGA_ID: self.state.saga_id, sc.SAGA_TYPE: self.state.saga_type}

    def annotate(self, span: trace_api.Span) -> None:
        """The span handling the input (a consumer span) gets the saga's attributes and its history as events."""
        if not span.is_recording():
            return
        span.set_attributes(self.base | {"saga.status": self.state.status.value})  # step/attempt: the message's
        for entry in self.history:
            span.add_event(f"saga.{entry.type}", _scalars(entry.payload) | ({"step": entry.step} if entry.step else {}))

    def _ended_by(self) -> tuple[str, Status, dict[str, Any]]:
        """How the pending command ended: its reply type (or why no reply counts any more) and a status."""
        types = {entry.type: entry for entry in self.history}
        reply = types.get("reply_received")
        if reply is not None:
            failure = next((types[t] for t in ("retry_scheduled", "step_failed", "failed") if t in types), None)
            name = str(reply.payload.get("reply", "reply"))
            if failure is None:
                return name, Status(StatusCode.UNSET), {}
            reason = str(failure.payload.get("reason", failure.type))
            return name, Status(StatusCode.ERROR, reason), {sc.SAGA_ERROR: reason, sc.ERROR_TYPE: name}
        for kind, why in (("timed_out", "timeout"), ("expired", "saga expired"), ("cancel_requested", "cancelled")):
            if kind in types:
                return why, Status(StatusCode.ERROR, why), {sc.SAGA_ERROR: why, sc.ERROR_TYPE: kind}
        return "superseded", Status(StatusCode.UNSET), {}

    def spans(
        self,
        tracer: trace_api.Tracer,
        saga: SpanContext,
        *,
        saga_parent: context_api.Context,
        parent: context_api.Context,
        end: int,
    ) -> None:
        pending = self.pending
        if pending is not None and pending.sent_at is not None:
            reply, status, extra = self._ended_by()
            attributes = self.base | extra
            attributes |= {
                sc.SAGA_STEP: pending.step,
                sc.SAGA_ATTEMPT: pending.attempt,
                sc.SAGA_COMPENSATION: pending.compensation,
                sc.SAGA_REPLY: reply,
                sc.MESSAGING_MESSAGE_ID: pending.message_id,
            }
            if pending.command:
                attributes[sc.SAGA_COMMAND] = pending.command
            with forced_span_id(derived_span_id(saga.trace_id, pending.message_id, pending.attempt)):
                span = tracer.start_span(
                    f"saga.{'compensate' if pending.compensation else 'step'} {pending.step}",
                    context=saga_parent,
                    attributes=attributes,
                    start_time=min(_ns(pending.sent_at), end),
                )
            span.set_status(status)
            span.end(end)
        for entry in self.history:
            name = _MARKERS.get(entry.type)
            if name is None:
                continue
            span = tracer.start_span(
                f"{name} {entry.step or self.state.saga_type}",
                context=parent,
                attributes=self.base | self._marker_attributes(entry),
                start_time=min(self.began, end),
            )
            if entry.type in {"timed_out", "expired", "failed"}:
                span.set_status(Status(StatusCode.ERROR, str(entry.payload.get("reason", entry.type))))
            span.end(end)

    def _marker_attributes(self, entry: HistoryEntry) -> dict[str, Any]:
        payload = entry.payload
        attributes: dict[str, Any] = {sc.SAGA_STEP: entry.step} if entry.step else {}
        if entry.type == "retry_scheduled":
            attributes |= {
                sc.SAGA_ATTEMPT: int(payload.get("attempt", 1)) + 1,
                "saga.retry.failed_attempt": int(payload.get("attempt", 1)),
                sc.SAGA_RETRY_DELAY: float(payload.get("delay_s", 0.0)),
                sc.SAGA_ERROR: str(payload.get("reason", "")),
                sc.ERROR_TYPE: _reply_type(self.history) or "retryable",
            }
        elif entry.type in {"timed_out", "expired"}:
            attributes |= {
                sc.SAGA_ATTEMPT: int(payload.get("attempt", self.state.attempt)),
                sc.SAGA_TIMEOUT_KIND: "step" if entry.type == "timed_out" else "time_to_live",
                sc.ERROR_TYPE: "timeout",
            }
        elif entry.type == "compensation_started":
            attributes |= {
                sc.SAGA_ERROR: str(payload.get("reason", "")),
                sc.SAGA_TO_COMPENSATE: [str(s) for s in payload.get("to_compensate", [])],
            }
        elif entry.type in _OUTCOMES:
            attributes[sc.SAGA_OUTCOME] = entry.type
            if self.state.failure_reason:
                attributes[sc.SAGA_ERROR] = self.state.failure_reason
        elif entry.type == "cancel_requested":
            attributes[sc.SAGA_ERROR] = str(payload.get("reason", ""))
        return attributes

    def metrics(self, instruments: Instruments) -> None:
        saga_type = self.state.saga_type
        for entry in self.history:
            if entry.type == "started":
                instruments.sagas_started.add(1, {"saga_type": saga_type})
            elif entry.type == "completed":
                instruments.sagas_completed.add(1, {"saga_type": saga_type})
            elif entry.type == "compensated":
                instruments.sagas_compensated.add(1, {"saga_type": saga_type})
            elif entry.type == "failed":
                instruments.sagas_failed.add(1, {"saga_type": saga_type})
            elif entry.type in _SENT and int(entry.payload.get("attempt", 1)) > 1:
                instruments.retries.add(1, {"saga_type": saga_type, "step": entry.step or ""})
            elif entry.type in {"timed_out", "expired"}:
                instruments.timeouts.add(1, {"saga_type": saga_type, "step": entry.step or ""})
        pending = self.pending
        replied = any(entry.type == "reply_received" for entry in self.history)
        if pending is not None and pending.sent_at is not None and replied:
            instruments.step_latency.record(
                max(0.0, time.time() - pending.sent_at.timestamp()),
                {
                    "saga_type": saga_type,
                    "step": pending.step,
                    "phase": "compensation" if pending.compensation else "forward",
                },
            )


def _reply_type(history: Sequence[HistoryEntry]) -> str | None:
    return next((str(e.payload.get("reply")) for e in history if e.type == "reply_received"), None)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
