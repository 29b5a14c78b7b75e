"""Request and response bodies of the HTTP admin API (they make its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorRequest(_Model):
    reason: str = Field(default="", max_length=500, description="Why: recorded in the saga's history.")
    actor: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[\w.@:+-]+$",
        description="Who: recorded in the history as api:<actor> (default api:anonymous).",
    )


class SagaView(_Model):
    id: str
    saga_type: str
    definition_version: int
    status: str
    step: str | None
    data: dict[str, Any]
    completed_steps: list[str]
    to_compensate: list[str]
    attempt: int
    epoch: int
    waiting: str | None
    pending_command_id: str | None
    deadline_at: datetime | None
    expires_at: datetime | None
    failure_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    trace_id: str | None = None
    last_error: str | None = None


class HistoryEvent(_Model):
    seq: int
    type: str
    from_status: str | None
    to_status: str
    step: str | None
    payload: dict[str, Any]
    at: datetime


class SagaPage(_Model):
    sagas: list[SagaView]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class SagaDetail(_Model):
    saga: SagaView
    history: list[HistoryEvent]


class AsOfView(_Model):
    saga_id: str
    as_of: datetime
    state: dict[str, Any] | None = Field(description="The state then; null if the saga did not exist yet.")


class OperationView(_Model):
    saga_id: str
    verb: str
    status: str
    step: str | None
    changed: bool
    actor: str
    reason: str


class DiagnosisView(_Model):
    saga_id: str
    status: str
    moving: bool
    summary: str
    details: list[str]
    suggestions: list[str]
    waiting_since: datetime | None
    deadline_at: datetime | None
    attempt: int | None
    last_error: str | None
    dead_letters: list[dict[str, Any]]


class VerificationView(_Model):
    saga_id: str
    events: int
    matches: bool
    differences: dict[str, dict[str, Any]]
    error: str | None


class VerifyReportView(_Model):
    checked: int
    ok: bool
    divergent: list[VerificationView]


class DefinitionView(_Model):
    name: str
    versions: list[int]
    latest: int
    steps: list[str] = Field(description="The latest version's steps, in order.")


class Problem(_Model):
    detail: str
    status: str | None = None
