"""Operator transitions: cancel, force-compensate, retry now, resume. Pure, like the rest of the engine.

Each records who asked and why as the first history entry of the transition (``*_requested`` / ``resumed``),
so the audit trail names the operator and a rebuild from history can replay the request. A verb that does not
apply to the saga's status is refused *before* anything is written: :func:`refusal` says why and what to do.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from orchestrator.definition._dsl import SagaDefinition
from orchestrator.definition._engine import _Draft, _resend
from orchestrator.definition._state import Actions, SagaState, SagaStatus

DEFAULT_ACTOR = "operator"


class OperatorVerb(StrEnum):
    CANCEL = "cancel"
    COMPENSATE = "compensate"
    RETRY = "retry"
    RESUME = "resume"


def refusal(verb: OperatorVerb, state: SagaState) -> str | None:
    """Why ``verb`` cannot apply to this saga now (None: it can), phrased as what to do instead."""
    status = state.status
    if verb is OperatorVerb.CANCEL and status is not SagaStatus.RUNNING:
        hint = {
            SagaStatus.COMPLETED: "to undo a completed saga, use `compensate`",
            SagaStatus.FAILED: "its compensation stopped; fix the cause and use `resume`",
        }.get(status, "nothing to cancel")
        return f"saga {state.saga_id} is {status}: only a running saga can be cancelled ({hint})"
    if verb is OperatorVerb.COMPENSATE and status not in {SagaStatus.RUNNING, SagaStatus.COMPLETED}:
        hint = "use `resume` to retry its compensation" if status is SagaStatus.FAILED else "nothing to compensate"
        return f"saga {state.saga_id} is {status}: only a running or completed saga can be compensated ({hint})"
    if verb is OperatorVerb.RETRY and (not status.is_live or state.step is None):
        hint = "use `resume` to retry its compensation" if status is SagaStatus.FAILED else "nothing to re-send"
        return f"saga {state.saga_id} is {status}: only a running or compensating saga has a step to retry ({hint})"
    if verb is OperatorVerb.RESUME and (status is not SagaStatus.FAILED or not state.to_compensate):
        return f"saga {state.saga_id} is {status}: only a failed saga can be resumed"
    return None


def cancel(
    definition: SagaDefinition[Any],
    state: SagaState,
    now: datetime,
    reason: str,
    *,
    actor: str = DEFAULT_ACTOR,
) -> Actions:
    """Compensate a running saga. The step in flight is compensated too: it may have been applied."""
    if refusal(OperatorVerb.CANCEL, state) is not None:
        return Actions(state=state, ignored=True)
    draft = _Draft(definition, state, now)
    draft.note("cancel_requested", state.step, reason=reason, actor=actor)
    draft.begin_compensation(f"cancelled: {reason}", include_current=True)
    return draft.actions()


def compensate(
    definition: SagaDefinition[Any],
    state: SagaState,
    now: datetime,
    reason: str,
    *,
    actor: str = DEFAULT_ACTOR,
) -> Actions:
    """Force compensation: of a running saga (as cancel does), or of a completed one, every compensable step
    in reverse. Used when a business decision reverses a transaction the saga already finished."""
    if refusal(OperatorVerb.COMPENSATE, state) is not None:
        return Actions(state=state, ignored=True)
    draft = _Draft(definition, state, now)
    draft.note("compensate_requested", state.step, reason=reason, actor=actor, from_status=state.status.value)
    draft.begin_compensation(
        f"compensation forced: {reason}",
        include_current=state.status is SagaStatus.RUNNING,
    )
    return draft.actions()


def retry(
    definition: SagaDefinition[Any],
    state: SagaState,
    now: datetime,
    reason: str,
    *,
    actor: str = DEFAULT_ACTOR,
) -> Actions:
    """Re-send the current step's command now, with the same message id (a participant that already did the
    work answers from its stored reply) and the next attempt number; a scheduled retry is brought forward."""
    if refusal(OperatorVerb.RETRY, state) is not None:
        return Actions(state=state, ignored=True)
    assert state.step is not None
    draft = _Draft(definition, state, now)
    draft.note("retry_requested", state.step, reason=reason, actor=actor, attempt=state.attempt + 1)
    _resend(draft, state.step, state.attempt + 1, compensating=state.status is SagaStatus.COMPENSATING)
    return draft.actions()


def resume(
    definition: SagaDefinition[Any],
    state: SagaState,
    now: datetime,
    reason: str = "",
    *,
    actor: str = DEFAULT_ACTOR,
) -> Actions:
    """Retry the compensation a failed saga stopped at, with a fresh message id (a new epoch)."""
    if refusal(OperatorVerb.RESUME, state) is not None:
        return Actions(state=state, ignored=True)
    draft = _Draft(definition, state.evolve(status=SagaStatus.COMPENSATING, epoch=state.epoch + 1), now)
    draft.note("resumed", state.to_compensate[0], epoch=state.epoch + 1, reason=reason, actor=actor)
    draft.send_compensation(state.to_compensate[0], attempt=1)
    return draft.actions()


TRANSITIONS = {
    OperatorVerb.CANCEL: cancel,
    OperatorVerb.COMPENSATE: compensate,
    OperatorVerb.RETRY: retry,
    OperatorVerb.RESUME: resume,
}
"""Every operator verb's transition, all with the signature ``(definition, state, now, reason, *, actor)``."""

# The history entry each verb writes first: what a rebuild from history recognises as an operator's input.
REQUEST_EVENTS = {
    "cancel_requested": OperatorVerb.CANCEL,
    "compensate_requested": OperatorVerb.COMPENSATE,
    "retry_requested": OperatorVerb.RETRY,
    "resumed": OperatorVerb.RESUME,
}
