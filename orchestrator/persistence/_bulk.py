"""Saga rows and history written a batch at a time, on a Core connection: one statement per kind of write."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Text, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from orchestrator.definition import HistoryEntry, SagaState, SagaStatus
from orchestrator.persistence._sagas import saga_columns, state_from_row
from orchestrator.persistence._tables import saga_event, saga_instance


@dataclass(frozen=True, kw_only=True)
class NewSaga:
    state: SagaState
    trace_context: Mapping[str, str] | None


@dataclass(frozen=True, kw_only=True)
class HistoryAppend:
    """One transition's entries; ``snapshot`` (the state after it) rides on the last one."""

    saga_id: str
    entries: Sequence[HistoryEntry]
    from_status: SagaStatus | None
    to_status: SagaStatus
    snapshot: Mapping[str, Any]


def _ids() -> Any:
    return bindparam("ids", type_=ARRAY(Text))


async def lock_sagas(
    conn: AsyncConnection, saga_ids: Collection[str]
) -> dict[str, tuple[SagaState, dict[str, str] | None]]:
    """``SELECT … FOR UPDATE`` of every known saga among ``saga_ids``, locked in id order so that two
    batches locking overlapping sagas never deadlock."""
    if not saga_ids:
        return {}
    rows = (
        await conn.execute(
            select(saga_instance)
            .where(saga_instance.c.id == any_(_ids()))
            .order_by(saga_instance.c.id)
            .with_for_update(),
            {"ids": sorted(saga_ids)},
        )
    ).mappings()
    return {row["id"]: (state_from_row(row), row["trace_context"]) for row in rows}


async def insert_sagas(conn: AsyncConnection, sagas: Sequence[NewSaga], *, now: datetime) -> set[str]:
    """Insert new sagas; returns the ids inserted (an id that already exists is left alone)."""
    if not sagas:
        return set()
    stmt = pg_insert(saga_instance).on_conflict_do_nothing(index_elements=["id"]).returning(saga_instance.c.id)
    rows = [
        {
            "id": saga.state.saga_id,
            "saga_type": saga.state.saga_type,
            "definition_version": saga.state.definition_version,
            "trace_context": saga.trace_context,
            "created_at": now,
            "updated_at": now,
            **saga_columns(saga.state),
        }
        for saga in sagas
    ]
    return set((await conn.execute(stmt, rows)).scalars())


async def update_sagas(conn: AsyncConnection, states: Sequence[SagaState], *, now: datetime) -> None:
    if not states:
        return
    await conn.execute(
        update(saga_instance)
        .where(saga_instance.c.id == bindparam("b_id"))
        .values(version=saga_instance.c.version + 1),
        [{"b_id": state.saga_id, "updated_at": now, **saga_columns(state)} for state in states],
    )


async def append_histories(conn: AsyncConnection, appends: Sequence[HistoryAppend], *, now: datetime) -> None:
    """Append transitions in order; sequence numbers continue each saga's log (sagas started in this batch
    have none yet)."""
    appends = [a for a in appends if a.entries]
    if not appends:
        return
    result = await conn.execute(
        select(saga_event.c.saga_id, func.max(saga_event.c.seq))
        .where(saga_event.c.saga_id == any_(_ids()))
        .group_by(saga_event.c.saga_id),
        {"ids": sorted({a.saga_id for a in appends})},
    )
    last: dict[str, int] = dict(result.tuples().all())
    rows: list[dict[str, Any]] = []
    for append in appends:
        payloads = [dict(entry.payload) for entry in append.entries]
        payloads[-1]["state"] = dict(append.snapshot)
        first = last.get(append.saga_id, 0) + 1
        for offset, (entry, payload) in enumerate(zip(append.entries, payloads, strict=True)):
            rows.append(
                {
                    "saga_id": append.saga_id,
                    "seq": first + offset,
                    "type": entry.type,
                    "from_status": append.from_status.value if append.from_status and offset == 0 else None,
                    "to_status": append.to_status.value,
                    "step": entry.step,
                    "payload": payload,
                    "at": now,
                }
            )
        last[append.saga_id] = first + len(append.entries) - 1
    await conn.execute(insert(saga_event), rows)
