"""``why``: the plain-language reason a saga is not moving, from its row, its history and the dead letters.

Pure: the caller loads what it needs and passes the time in, so every sentence here is unit-testable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.definition import RetryPolicy, SagaDefinition, SagaStatus, Step

_SENT = ("command_sent", "compensation_sent")


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    saga_id: str
    status: str
    moving: bool
    summary: str
    details: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    waiting_since: datetime | None = None
    deadline_at: datetime | None = None
    attempt: int | None = None
    last_error: str | None = None
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def ago(moment: datetime, now: datetime) -> str:
    seconds = (now - moment).total_seconds()
    return f"{_span(abs(seconds))} ago" if seconds >= 0 else f"in {_span(-seconds)}"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def last_error(events: Sequence[Mapping[str, Any]]) -> str | None:
    """The most recent failure the history records: a failure reply, a timeout or a failed compensation."""
    for event in reversed(events):
        payload = event["payload"]
        kind = event["type"]
        if kind == "reply_received" and "reason" in payload.get("body", {}):
            return f"{payload['reply']} from {event['step']}: {payload['body']['reason']}"
        if kind == "timed_out":
            return f"{event['step']}: no reply to attempt {payload.get('attempt')} before its deadline"
        if kind in {"failed", "step_failed"}:
            return str(payload.get("reason"))
    return None


def _declared(definition: SagaDefinition[Any] | None, step: str) -> Step[Any] | None:
    """The step as the saga's definition declares it (None: the definition is not deployed, or lacks it)."""
    if definition is None or step not in {s.name for s in definition.steps}:
        return None
    return definition.step(step)


def _policy(definition: SagaDefinition[Any] | None, step: str, *, compensating: bool) -> RetryPolicy | None:
    declared = _declared(definition, step)
    if declared is None:
        return None
    if compensating and declared.compensation is not None:
        return declared.compensation.retry
    return declared.retry


def _participant(definition: SagaDefinition[Any] | None, step: str) -> str:
    declared = _declared(definition, step)
    return "the participant" if declared is None else f"the {declared.participant} service"


def explain(
    row: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    definition: SagaDefinition[Any] | None,
    dead_letters: Sequence[Mapping[str, Any]] = (),
    dead_letters_error: str | None = None,
) -> Diagnosis:
    saga_id, status = row["id"], SagaStatus(row["status"])
    error = last_error(events)
    base = {"saga_id": saga_id, "status": status.value, "last_error": error, "dead_letters": list(dead_letters)}
    details: list[str] = []
    suggestions: list[str] = []
    if definition is None:
        details.append(
            f"its definition {row['saga_type']} v{row['definition_version']} is not deployed: the orchestrator "
            "dead-letters its replies (reason unknown-definition) until that version is deployed again",
        )
    if dead_letters:
        details.append(f"{len(dead_letters)} dead-lettered message(s) concern this saga:")
        details += [
            f"  offset {d.get('offset')}: {d.get('reason')} from {d.get('source_topic')}: {str(d.get('error'))[:200]}"
            for d in dead_letters
        ]
        suggestions.append("after fixing the cause: sagaline dlq replay <offset>")
    if dead_letters_error:
        details.append(f"dead letters {dead_letters_error}")
    if status is SagaStatus.COMPLETED:
        summary = f"completed {ago(row['updated_at'], now)}: nothing to do"
        return Diagnosis(**base, moving=False, summary=summary, details=details, suggestions=suggestions)
    if status is SagaStatus.COMPENSATED:
        summary = f"compensated {ago(row['updated_at'], now)} ({row['failure_reason']}): nothing to do"
        return Diagnosis(**base, moving=False, summary=summary, details=details, suggestions=suggestions)
    if status is SagaStatus.FAILED:
        remaining = ", ".join(row["to_compensate"]) or "none"
        summary = (
            f"failed {ago(row['updated_at'], now)}: {row['failure_reason']}. It waits for an operator; "
            f"compensations left: {remaining}"
        )
        suggestions.insert(0, f"fix the cause, then: sagaline saga resume {saga_id}")
        return Diagnosis(**base, moving=False, summary=summary, details=details, suggestions=suggestions)
    return _live(row, events, now=now, definition=definition, base=base, details=details, suggestions=suggestions)


def _live(
    row: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    definition: SagaDefinition[Any] | None,
    base: dict[str, Any],
    details: list[str],
    suggestions: list[str],
) -> Diagnosis:
    saga_id, step, attempt = row["id"], row["step"], row["attempt"]
    compensating = row["status"] == SagaStatus.COMPENSATING.value
    sent = next((e for e in reversed(events) if e["type"] in _SENT and e["step"] == step), None)
    since = sent["at"] if sent else row["updated_at"]
    command = sent["payload"].get("command", "its command") if sent else "its command"
    policy = _policy(definition, step, compensating=compensating)
    of_max = f" of {policy.maximum_attempts}" if policy else ""
    what = f"compensation of {step}" if compensating else f"step {step}"
    deadline: datetime | None = row["deadline_at"]
    if row["waiting"] == "retry":
        summary = (
            f"{what} failed retryably; attempt {attempt + 1}{of_max} is scheduled {ago(deadline, now)}"
            if (deadline)
            else f"{what} waits for a retry"
        )
    else:
        summary = (
            f"waiting {_span((now - since).total_seconds())} for {_participant(definition, step)} to answer "
            f"{command} ({what}, attempt {attempt}{of_max})"
        )
    moving = True
    if deadline is not None and row["waiting"] != "retry":
        if deadline > now:
            after = "re-sent" if policy is None or policy.allows_retry(attempt) else _exhausted(compensating)
            details.append(f"deadline {ago(deadline, now)} ({deadline.isoformat()}): then the command is {after}")
        elif now - deadline > timedelta(seconds=5):
            moving = False
            details.append(
                f"the deadline passed {ago(deadline, now)} and nothing happened: the orchestrator's deadline "
                "sweeper is not running (is `sagaline orchestrator` up and connected to this database?)",
            )
    if row["updated_at"] <= now - timedelta(seconds=60) and row["waiting"] != "retry":
        moving = False
        details.append(
            f"no state change for {_span((now - row['updated_at']).total_seconds())}: check that "
            f"{_participant(definition, step)} is running and consuming its commands topic",
        )
    if row["expires_at"] is not None and not compensating:
        details.append(f"time-to-live ends {ago(row['expires_at'], now)}: then the saga compensates")
    if base["last_error"]:
        details.append(f"last error: {base['last_error']}")
    suggestions += [
        f"re-send the current command now: sagaline saga retry {saga_id}",
        *([] if compensating else [f"give up and compensate: sagaline saga cancel {saga_id}"]),
    ]
    return Diagnosis(
        **base,
        moving=moving and not base["dead_letters"],
        summary=summary,
        details=details,
        suggestions=suggestions,
        waiting_since=since,
        deadline_at=deadline,
        attempt=attempt,
    )


def _exhausted(compensating: bool) -> str:
    return (
        "not re-sent (attempts used up): the saga fails"
        if compensating
        else ("not re-sent (attempts used up): the saga compensates")
    )
