"""Reading the append-only history: state as of a time, and rebuilding a saga from its events.

A rebuild replays the recorded *inputs* (start, replies, timeouts, cancel, resume) through the pure engine at
the recorded times; it must arrive at the stored state. That checks both the log and the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from contracts import REGISTRY, Reply, StartCommand
from orchestrator import definition as engine
from orchestrator.definition import DEFAULT_ACTOR, REQUEST_EVENTS, TRANSITIONS, Actions, SagaDefinition, SagaState
from orchestrator.persistence import snapshot

# The first entry a transition writes names its input; everything after it in the transition is a consequence.
_INPUTS = {"started", "reply_received", "retrying", "timed_out", "expired", *REQUEST_EVENTS}


class RebuildError(ValueError):
    """The history cannot be replayed (unknown input, or an input the engine ignores)."""


def state_as_of(events: Sequence[Mapping[str, Any]], at: datetime) -> dict[str, Any] | None:
    """The state snapshot after the last transition recorded at or before ``at`` (None: the saga did not exist)."""
    found: dict[str, Any] | None = None
    for event in events:
        if event["at"] > at:
            break
        state = event["payload"].get("state")
        if state is not None:
            found = dict(state)
    return found


def rebuild(definition: SagaDefinition[Any], saga_id: str, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Replay the inputs in ``events`` (ordered by seq) through the engine; returns the final state snapshot."""
    state: SagaState | None = None
    for event in events:
        kind = event["type"]
        if kind not in _INPUTS:
            continue
        if kind == "started":
            start = REGISTRY.decode_value(event["payload"]["input"])
            assert isinstance(start, StartCommand)
            state = engine.start(definition, saga_id, start, event["at"]).state
            continue
        if state is None:
            raise RebuildError(f"{kind} at seq {event['seq']} comes before the saga started")
        state = _apply(definition, state, event).state
    if state is None:
        raise RebuildError("no 'started' event")
    return snapshot(state)


def _apply(definition: SagaDefinition[Any], state: SagaState, event: Mapping[str, Any]) -> Actions:
    kind, payload, now = event["type"], event["payload"], event["at"]
    if kind == "reply_received":
        reply = REGISTRY.decode_value(payload["body"])
        assert isinstance(reply, Reply)
        actions = engine.on_reply(
            definition,
            state,
            reply,
            causation_id=payload["causation_id"],
            attempt=payload["attempt"],
            now=now,
        )
    elif kind in REQUEST_EVENTS:
        transition = TRANSITIONS[REQUEST_EVENTS[kind]]
        actions = transition(
            definition, state, now, payload.get("reason", ""), actor=payload.get("actor", DEFAULT_ACTOR)
        )
    else:
        actions = engine.on_timeout(definition, state, now)
    if actions.ignored:
        raise RebuildError(f"the engine ignores the recorded {kind} at seq {event['seq']}")
    return actions
