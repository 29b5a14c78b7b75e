"""Values the engine reads and returns: a saga's state, and the actions a transition asks for."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
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
        """A copy with ``changes`` (``dataclasses.replace`` without its per-call introspection: ~7x faster, and
        a transition evolves its state two or three times)."""
        if not changes.keys() <= _STATE_FIELDS:
            raise TypeError(f"SagaState has no field {sorted(changes.keys() - _STATE_FIELDS)}")
        evolved = object.__new__(SagaState)
        evolved.__dict__.update(self.__dict__, **changes)
        return evolved

    def command_id(self, step: str, *, compensation: bool) -> str:
        """Stable per (saga, step, direction, epoch): a resend after a timeout reuses it, so a participant
        that already did the work answers from its stored reply. ``epoch`` grows on operator resume."""
        phase = "undo" if compensation else "do"
        return name_based_id(f"{self.saga_id}/{phase}/{step}/{self.epoch}")


def name_based_id(name: str, namespace: uuid.UUID = MESSAGE_ID_NAMESPACE) -> str:
    """``str(uuid.uuid5(namespace, name))``, the same text, without building a ``UUID`` (5x faster)."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])  # noqa: S324
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_STATE_FIELDS = frozenset(f.name for f in fields(SagaState))


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
