"""Reading and writing saga instances and their append-only history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from orchestrator.definition import HistoryEntry, SagaState, SagaStatus
from orchestrator.persistence._tables import saga_instance, saga_transition


def state_from_row(row: Mapping[str, Any] | RowMapping) -> SagaState:
    return SagaState(
        saga_id=row["id"],
        saga_type=row["saga_type"],
        definition_version=row["definition_version"],
        status=SagaStatus(row["status"]),
        step=row["step"],
        data=row["data"],
        completed_steps=tuple(row["completed_steps"]),
        to_compensate=tuple(row["to_compensate"]),
        attempt=row["attempt"],
        epoch=row["epoch"],
        waiting=row["waiting"],
        pending_command_id=row["pending_command_id"],
        deadline_at=row["deadline_at"],
        expires_at=row["expires_at"],
        failure_reason=row["failure_reason"],
    )


def saga_columns(state: SagaState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "step": state.step,
        "data": dict(state.data),
        "completed_steps": list(state.completed_steps),
        "to_compensate": list(state.to_compensate),
        "attempt": state.attempt,
        "epoch": state.epoch,
        "waiting": state.waiting,
        "pending_command_id": state.pending_command_id,
        "deadline_at": state.deadline_at,
        "expires_at": state.expires_at,
        "failure_reason": state.failure_reason,
    }


def snapshot(state: SagaState) -> dict[str, Any]:
    """The state as JSON: what the history keeps and what a rebuild is compared with."""
    columns = saga_columns(state)
    for key in ("deadline_at", "expires_at"):
        value = columns[key]
        columns[key] = value.isoformat() if value is not None else None
    return {
        "saga_id": state.saga_id,
        "saga_type": state.saga_type,
        "definition_version": state.definition_version,
        **columns,
    }


async def insert_saga(
    session: AsyncSession,
    state: SagaState,
    *,
    trace_context: dict[str, str] | None,
    now: datetime,
) -> bool:
    """Insert a new saga; False when a saga with this id already exists (a duplicate start)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

    stmt = (
        pg_insert(saga_instance)
        .values(
            id=state.saga_id,
            saga_type=state.saga_type,
            definition_version=state.definition_version,
            trace_context=trace_context,
            created_at=now,
            updated_at=now,
            **saga_columns(state),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(saga_instance.c.id)
    )
    return (await session.execute(stmt)).first() is not None


async def lock_saga(session: AsyncSession, saga_id: str) -> tuple[SagaState, dict[str, str] | None] | None:
    """``SELECT … FOR UPDATE``: the saga and its stored trace context, or None if unknown."""
    row = (
        (await session.execute(select(saga_instance).where(saga_instance.c.id == saga_id).with_for_update()))
        .mappings()
        .first()
    )
    return None if row is None else (state_from_row(row), row["trace_context"])


async def save_saga(session: AsyncSession, state: SagaState, *, now: datetime) -> None:
    await session.execute(
        update(saga_instance)
        .where(saga_instance.c.id == state.saga_id)
        .values(updated_at=now, version=saga_instance.c.version + 1, **saga_columns(state)),
    )


async def claim_due(
    session: AsyncSession | AsyncConnection,
    now: datetime,
    limit: int,
) -> list[tuple[SagaState, dict[str, str] | None]]:
    """Live sagas whose deadline or time-to-live has passed, locked with ``SKIP LOCKED``, most overdue deadline
    first. One statement per kind, each a range scan of its own partial index: as one ``OR``, Postgres read the
    expiry half through the deadline index, i.e. every live saga (and its dead index entries), ~10 ms a sweep
    under load; each statement keeps its condition, so a row that changed before it was locked is re-checked."""
    deadline_passed = (saga_instance.c.deadline_at <= now) & saga_instance.c.status.in_(["running", "compensating"])
    expired = (saga_instance.c.expires_at <= now) & (saga_instance.c.status == "running")
    found: dict[str, RowMapping] = {}
    for due, order in ((deadline_passed, saga_instance.c.deadline_at), (expired, saga_instance.c.expires_at)):
        if len(found) >= limit:
            break
        # A saga due both ways is claimed once, and the batch is filled with others.
        condition = due & saga_instance.c.id.not_in(list(found)) if found else due
        query = select(saga_instance).where(condition).order_by(order).limit(limit - len(found))
        rows = await session.execute(query.with_for_update(skip_locked=True))
        found.update((row["id"], row) for row in rows.mappings())
    return [(state_from_row(r), r["trace_context"]) for r in found.values()]


def transition_entries(entries: Sequence[HistoryEntry], snapshot: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A transition's events as its history row's ``entries``; ``snapshot`` (the state after it) rides on the
    last one, for "state as of T" reads."""
    payloads = [dict(entry.payload) for entry in entries]
    if snapshot is not None:
        payloads[-1]["state"] = dict(snapshot)
    return [
        {"type": entry.type, "step": entry.step, "payload": payload}
        for entry, payload in zip(entries, payloads, strict=True)
    ]


async def append_history(
    session: AsyncSession,
    saga_id: str,
    entries: Sequence[HistoryEntry],
    *,
    from_status: SagaStatus | None,
    to_status: SagaStatus,
    now: datetime,
    snapshot: Mapping[str, Any] | None = None,
) -> None:
    """Append one transition's entries; ``snapshot`` (the state after it) rides on the last one, for
    "state as of T" reads."""
    if not entries:
        return
    last = (
        await session.execute(
            select(saga_transition.c.last_seq)
            .where(saga_transition.c.saga_id == saga_id)
            .order_by(saga_transition.c.first_seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none() or 0
    await session.execute(
        insert(saga_transition).values(
            saga_id=saga_id,
            first_seq=last + 1,
            last_seq=last + len(entries),
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            at=now,
            entries=transition_entries(entries, snapshot),
        )
    )
