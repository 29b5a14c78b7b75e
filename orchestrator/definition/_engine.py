"""The pure saga engine: state + input + time in, actions out. No I/O, no clock reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts import (
    Event,
    FailureReply,
    Reply,
    SagaCompensated,
    SagaCompensationStarted,
    SagaCompleted,
    SagaFailed,
    SagaStarted,
    StartCommand,
)
from orchestrator.definition._dsl import SagaContext, SagaDefinition, Step
from orchestrator.definition._errors import UnexpectedReply
from orchestrator.definition._state import Actions, HistoryEntry, OutboundCommand, SagaState, SagaStatus


class _Draft:
    """Accumulates one transition's effects; turned into ``Actions`` at the end."""

    def __init__(self, definition: SagaDefinition[Any], state: SagaState, now: datetime) -> None:
        self.definition = definition
        self.state = state
        self.now = now
        self.history: list[HistoryEntry] = []
        self.commands: list[OutboundCommand] = []
        self.events: list[Event] = []
        self._start: StartCommand | None = None  # the saga's start command, validated once per transition

    def context(self) -> SagaContext[Any]:
        context = self.definition.context(self.state.data, start=self._start, saga_id=self.state.saga_id)
        self._start = context.input
        return context

    def note(self, type_: str, step: str | None = None, **payload: Any) -> None:
        self.history.append(HistoryEntry(type=type_, step=step, payload=payload))

    def actions(self) -> Actions:
        return Actions(
            state=self.state,
            history=tuple(self.history),
            commands=tuple(self.commands),
            events=tuple(self.events),
        )

    # --- forward -----------------------------------------------------------------------------

    def send_forward(self, step: Step[Any], attempt: int) -> None:
        context = self.context()
        message_id = self.state.command_id(step.name, compensation=False)
        command = step.build(context)
        self.commands.append(
            OutboundCommand(
                participant=step.participant,
                step=step.name,
                command=command,
                message_id=message_id,
                attempt=attempt,
                compensation=False,
            ),
        )
        self.state = self.state.evolve(
            status=SagaStatus.RUNNING,
            step=step.name,
            attempt=attempt,
            waiting="reply",
            pending_command_id=message_id,
            deadline_at=self.now + step.timeout,
        )
        self.note("command_sent", step.name, command=command.type_name(), message_id=message_id, attempt=attempt)

    def advance(self, after: int) -> None:
        """Send the first step after position ``after`` whose guard admits it, or complete."""
        context = self.context()
        for step in self.definition.steps[after + 1 :]:
            if step.when is not None and not step.when(context):
                self.note("step_skipped", step.name, guard=step.when_label)
                continue
            self.send_forward(step, attempt=1)
            return
        self.state = self.state.evolve(
            status=SagaStatus.COMPLETED,
            step=None,
            waiting=None,
            pending_command_id=None,
            deadline_at=None,
        )
        self.note("completed")
        self.events.append(SagaCompleted(saga_id=self.state.saga_id, saga_type=self.state.saga_type))

    # --- compensation ------------------------------------------------------------------------

    def begin_compensation(self, reason: str, *, include_current: bool) -> None:
        steps = list(self.state.completed_steps)
        current = self.state.step
        if include_current and current is not None and current not in steps:
            steps.append(current)
        queue = tuple(s for s in reversed(steps) if self.definition.step(s).compensation is not None)
        self.state = self.state.evolve(
            status=SagaStatus.COMPENSATING,
            to_compensate=queue,
            failure_reason=reason,
        )
        self.note("compensation_started", current, reason=reason, to_compensate=list(queue))
        self.events.append(
            SagaCompensationStarted(
                saga_id=self.state.saga_id,
                saga_type=self.state.saga_type,
                failed_step=current,
                reason=reason,
            ),
        )
        self.next_compensation()

    def next_compensation(self) -> None:
        if not self.state.to_compensate:
            self.state = self.state.evolve(
                status=SagaStatus.COMPENSATED,
                step=None,
                waiting=None,
                pending_command_id=None,
                deadline_at=None,
            )
            reason = self.state.failure_reason or "compensated"
            self.note("compensated", reason=reason)
            self.events.append(
                SagaCompensated(saga_id=self.state.saga_id, saga_type=self.state.saga_type, reason=reason)
            )
            return
        self.send_compensation(self.state.to_compensate[0], attempt=1)

    def send_compensation(self, step_name: str, attempt: int) -> None:
        compensation = self.definition.step(step_name).compensation
        assert compensation is not None  # only compensable steps are queued
        message_id = self.state.command_id(step_name, compensation=True)
        command = compensation.build(self.context())
        self.commands.append(
            OutboundCommand(
                participant=self.definition.step(step_name).participant,
                step=step_name,
                command=command,
                message_id=message_id,
                attempt=attempt,
                compensation=True,
            ),
        )
        self.state = self.state.evolve(
            step=step_name,
            attempt=attempt,
            waiting="reply",
            pending_command_id=message_id,
            deadline_at=self.now + compensation.timeout,
        )
        self.note("compensation_sent", step_name, command=command.type_name(), message_id=message_id, attempt=attempt)

    def fail(self, reason: str) -> None:
        self.state = self.state.evolve(
            status=SagaStatus.FAILED,
            waiting=None,
            deadline_at=None,
            failure_reason=reason,
        )
        self.note("failed", self.state.step, reason=reason)
        self.events.append(SagaFailed(saga_id=self.state.saga_id, saga_type=self.state.saga_type, reason=reason))

    def schedule_retry(self, delay_seconds: float, reason: str) -> None:
        deadline = self.now + timedelta(seconds=delay_seconds)
        self.state = self.state.evolve(waiting="retry", deadline_at=deadline)
        self.note("retry_scheduled", self.state.step, attempt=self.state.attempt, delay_s=delay_seconds, reason=reason)


def start(definition: SagaDefinition[Any], saga_id: str, command: StartCommand, now: datetime) -> Actions:
    """A new saga: record its input and send the first admitted step."""
    state = SagaState(
        saga_id=saga_id,
        saga_type=definition.name,
        definition_version=definition.version,
        status=SagaStatus.RUNNING,
        step=None,
        data={"input": command.model_dump(mode="json"), "results": {}},
        expires_at=now + definition.time_to_live,
    )
    definition.remember_start(saga_id, state.data["input"], command)
    draft = _Draft(definition, state, now)
    draft.note("started", input=state.data["input"])
    draft.events.append(SagaStarted(saga_id=saga_id, saga_type=definition.name))
    draft.advance(after=-1)
    return draft.actions()


def on_reply(
    definition: SagaDefinition[Any],
    state: SagaState,
    reply: Reply,
    *,
    causation_id: str | None,
    attempt: int,
    now: datetime,
) -> Actions:
    """Apply a participant's reply. Replies that do not answer the pending command are ignored."""
    if not state.status.is_live or causation_id is None or causation_id != state.pending_command_id:
        return Actions(state=state, ignored=True)
    superseded = state.waiting == "retry" or attempt != state.attempt
    if isinstance(reply, FailureReply) and reply.retryable and superseded:
        # An earlier attempt's transient failure: a retry is already scheduled or in flight. A non-retryable
        # failure is definitive for the message id (the participant stored it), whichever attempt it answers.
        return Actions(state=state, ignored=True)
    assert state.step is not None
    step = definition.step(state.step)
    draft = _Draft(definition, state, now)
    draft.note(
        "reply_received",
        step.name,
        reply=reply.type_name(),
        attempt=attempt,
        causation_id=causation_id,
        body=reply.model_dump(mode="json"),
    )
    if state.status is SagaStatus.RUNNING:
        _forward_reply(draft, step, reply)
    else:
        _compensation_reply(draft, step, reply)
    return draft.actions()


def _forward_reply(draft: _Draft, step: Step[Any], reply: Reply) -> None:
    if isinstance(reply, FailureReply):
        reason = f"{step.name}: {reply.reason}"
        if reply.retryable and step.retry.allows_retry(draft.state.attempt, reply.error_type):
            draft.schedule_retry(step.retry.delay_after(draft.state.attempt).total_seconds(), reason)
        else:
            draft.note("step_failed", step.name, reason=reply.reason, error_type=reply.error_type)
            draft.begin_compensation(reason, include_current=False)
        return
    if not isinstance(reply, step.replies):
        msg = f"step {step.name!r} does not declare reply type {reply.type_name()!r}"
        raise UnexpectedReply(msg)
    results = dict(draft.state.data.get("results", {}))
    results[step.name] = reply.model_dump(mode="json")
    draft.state = draft.state.evolve(
        data={**draft.state.data, "results": results},
        completed_steps=(*draft.state.completed_steps, step.name),
    )
    draft.note("step_completed", step.name)
    draft.advance(after=draft.definition.position(step.name))


def _compensation_reply(draft: _Draft, step: Step[Any], reply: Reply) -> None:
    compensation = step.compensation
    assert compensation is not None
    if isinstance(reply, FailureReply):
        reason = f"compensation of {step.name}: {reply.reason}"
        if reply.retryable and compensation.retry.allows_retry(draft.state.attempt, reply.error_type):
            draft.schedule_retry(compensation.retry.delay_after(draft.state.attempt).total_seconds(), reason)
        else:
            draft.fail(reason)
        return
    if not isinstance(reply, compensation.replies):
        msg = f"compensation of {step.name!r} does not declare reply type {reply.type_name()!r}"
        raise UnexpectedReply(msg)
    draft.note("step_compensated", step.name)
    draft.state = draft.state.evolve(to_compensate=draft.state.to_compensate[1:])
    draft.next_compensation()


def on_timeout(definition: SagaDefinition[Any], state: SagaState, now: datetime) -> Actions:
    """The sweeper found the saga's deadline or time-to-live passed."""
    if not state.status.is_live:
        return Actions(state=state, ignored=True)
    draft = _Draft(definition, state, now)
    expired = state.expires_at is not None and now >= state.expires_at
    if state.status is SagaStatus.RUNNING and expired:
        draft.note("expired", state.step)
        draft.begin_compensation("saga exceeded its time-to-live", include_current=True)
        return draft.actions()
    if state.deadline_at is None or now < state.deadline_at or state.step is None:
        return Actions(state=state, ignored=True)
    step = definition.step(state.step)
    compensating = state.status is SagaStatus.COMPENSATING
    policy = step.compensation.retry if compensating and step.compensation else step.retry
    if state.waiting == "retry":
        draft.note("retrying", step.name, attempt=state.attempt + 1)
        _resend(draft, step.name, state.attempt + 1, compensating=compensating)
        return draft.actions()
    draft.note("timed_out", step.name, attempt=state.attempt)
    if policy.allows_retry(state.attempt):
        _resend(draft, step.name, state.attempt + 1, compensating=compensating)
    elif compensating:
        draft.fail(f"compensation of {step.name} timed out {state.attempt} times")
    else:
        draft.begin_compensation(f"{step.name}: no reply after {state.attempt} attempts", include_current=True)
    return draft.actions()


def _resend(draft: _Draft, step_name: str, attempt: int, *, compensating: bool) -> None:
    if compensating:
        draft.send_compensation(step_name, attempt)
    else:
        draft.send_forward(draft.definition.step(step_name), attempt)
