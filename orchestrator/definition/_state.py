"""Values the engine reads and returns: a saga's state, and the actions a transition asks for."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from contracts import Command, Event

MESSAGE_ID_NAMESPACE = uuid.UUID("6f1d9a64-3a55-4f0c-9d1e-5a9f0c2b7e11")


class SagaStatus(StrEnum):
    RUNNING = "running"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """Completed and compensated are final; failed waits for an operator's resume."""
        return self in {SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.FAILED}

    @property
    def is_live(self) -> bool:
        return self in {SagaStatus.RUNNING, SagaStatus.COMPENSATING}


Waiting = Literal["reply", "retry"]


@dataclass(frozen=True, kw_only=True)
class SagaState:
    """A saga instance as the engine sees it. The runtime persists every field."""

    saga_id: str
    saga_type: str
    status: SagaStatus
    step: str | None
    data: Mapping[str, Any]
    completed_steps: tuple[str, ...] = ()
    to_compensate: tuple[str, ...] = ()
    attempt: int = 1
    epoch: int = 0
    waiting: Waiting | None = None
    pending_command_id: str | None = None
    deadline_at: datetime | None = None
    expires_at: datetime | None = None
    failure_reason: str | None = None
    definition_version: int = 1  # the definition this saga started on; it finishes on the same one

    def evolve(self, **changes: Any) -> SagaState:
        return replace(self, **changes)

    def command_id(self, step: str, *, compensation: bool) -> str:
        """Stable per (saga, step, direction, epoch): a resend after a timeout reuses it, so a participant
        that already did the work answers from its stored reply. ``epoch`` grows on operator resume."""
        phase = "undo" if compensation else "do"
        return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{self.saga_id}/{phase}/{step}/{self.epoch}"))


@dataclass(frozen=True, kw_only=True)
class OutboundCommand:
    participant: str
    step: str
    command: Command
    message_id: str
    attempt: int
    compensation: bool


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One row of the append-only ``saga_event`` log."""

    type: str
    step: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Actions:
    """What the runtime must do, atomically: persist ``state``, append ``history``, send ``commands``
    and publish ``events`` through the outbox. ``ignored`` means nothing changed (stale or duplicate input)."""

    state: SagaState
    history: tuple[HistoryEntry, ...] = ()
    commands: tuple[OutboundCommand, ...] = ()
    events: tuple[Event, ...] = ()
    ignored: bool = False
