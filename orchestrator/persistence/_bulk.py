# ruff: noqa: S608 - table and column names are our own constants; every value is a parameter
"""Saga rows, history and outbox rows of a batch: locked in one statement, written in one."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import any_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from orchestrator.definition import HistoryEntry, SagaState, SagaStatus
from orchestrator.messaging import (
    OutboxRecord,
    Params,
    Written,
    driver_connection,
    inbox_claim,
    json_text,
    outbox_insert,
)
from orchestrator.persistence._db import text_ids
from orchestrator.persistence._known import KnownSaga, KnownSagas, RowVersion
from orchestrator.persistence._sagas import saga_columns, state_from_row
from orchestrator.persistence._tables import inbox, outbox, saga_event, saga_instance


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


Locked = dict[str, tuple[SagaState, Mapping[str, str] | None]]


def _locked(rows: Iterable[Mapping[str, Any] | RowMapping], kept: Mapping[str, KnownSaga] | None = None) -> Locked:
    """States and trace contexts by saga id: from ``kept`` for a row marked ``kept`` (sent without its JSON),
    from the row otherwise."""
    locked: Locked = {}
    for row in rows:
        saga = kept[row["id"]] if kept and row["kept"] else None
        locked[row["id"]] = (
            (saga.state, saga.trace) if saga is not None else (state_from_row(row), row["trace_context"])
        )
    return locked


# What a kept row need not send: its JSON columns (the rest are a few scalars, cheaper to take than to leave).
_JSON_COLUMNS = ("data", "completed_steps", "to_compensate", "trace_context")
_SCALAR_COLUMNS = tuple(
    c.name for c in saga_instance.columns if c.name not in _JSON_COLUMNS and c.name not in {"version", "created_at"}
)
_LOCKED_COLUMNS = ", ".join(
    [
        "l.version",
        "l.created_at",
        "k.id IS NOT NULL AS kept",
        *(f"l.{name}" for name in _SCALAR_COLUMNS),
        *(f"CASE WHEN k.id IS NULL THEN l.{name} END AS {name}" for name in _JSON_COLUMNS),
    ]
)


async def lock_sagas(conn: AsyncConnection, saga_ids: Collection[str]) -> Locked:
    """``SELECT … FOR UPDATE`` of every known saga among ``saga_ids``, locked in id order so that two
    batches locking overlapping sagas never deadlock."""
    if not saga_ids:
        return {}
    rows = (
        await conn.execute(
            select(saga_instance)
            .where(saga_instance.c.id == any_(text_ids()))
            .order_by(saga_instance.c.id)
            .with_for_update(),
            {"ids": sorted(saga_ids)},
        )
    ).mappings()
    return _locked(rows)


async def claim_and_lock(
    conn: AsyncConnection,
    consumer: str,
    message_ids: Sequence[str],
    saga_ids: Collection[str],
    known: KnownSagas | None = None,
) -> tuple[set[str], Locked]:
    """In one statement: the inbox claims of ``message_ids`` (the ids seen for the first time) and
    ``lock_sagas`` of ``saga_ids``; a row still at the version ``known`` wrote is taken from ``known``."""
    params = Params()
    # Taken before the statement: what other transactions commit meanwhile must not change what the rows are
    # compared with (a newer version) or take a kept state away (an eviction).
    among = known.among(saga_ids) if known is not None else {}
    kept = (
        f"unnest({params.add(list(among), 'text[]')}, "
        f"{params.add([k.row.version for k in among.values()], 'int[]')}, "
        f"{params.add([k.row.created_at for k in among.values()], 'timestamptz[]')}) AS k(id, version, created_at)"
    )
    sql = (
        f"WITH claimed AS ({inbox_claim(inbox, consumer, message_ids, params=params)}), "
        f"locked AS (SELECT * FROM {saga_instance.fullname} WHERE id = ANY({params.add(sorted(saga_ids), 'text[]')}) "
        "ORDER BY id FOR UPDATE) "
        f"SELECT ARRAY(SELECT message_id FROM claimed) AS claimed_ids, {_LOCKED_COLUMNS} FROM (SELECT 1) AS one "
        f"LEFT JOIN locked AS l ON true LEFT JOIN {kept} "
        "ON k.id = l.id AND k.version = l.version AND k.created_at = l.created_at"
    )
    rows = await (await driver_connection(conn)).fetch(sql, *params.values)
    return set(rows[0]["claimed_ids"]), _locked((row for row in rows if row["id"] is not None), among)


@dataclass(frozen=True)
class BatchWritten:
    inserted: set[str]  # new sagas actually inserted (an id that already existed is left alone)
    outbox: Written
    rows: dict[str, RowVersion]  # every saga row inserted or updated, as it now is


_SAGA_COLUMNS = (
    ("status", "text"),
    ("step", "text"),
    ("data", "jsonb"),
    ("completed_steps", "jsonb"),
    ("to_compensate", "jsonb"),
    ("attempt", "int"),
    ("epoch", "int"),
    ("waiting", "text"),
    ("pending_command_id", "text"),
    ("deadline_at", "timestamptz"),
    ("expires_at", "timestamptz"),
    ("failure_reason", "text"),
)


def _column_arrays(states: Sequence[SagaState], params: Params) -> list[str]:
    """One array parameter per saga column, as ``unnest`` arguments (jsonb travels as text)."""
    rows = [saga_columns(state) for state in states]
    return [
        params.add(
            [json_text(row[name]) if sql_type == "jsonb" else row[name] for row in rows],
            "text[]" if sql_type == "jsonb" else f"{sql_type}[]",
        )
        for name, sql_type in _SAGA_COLUMNS
    ]


def _cast(name: str, sql_type: str, alias: str) -> str:
    return f"{alias}.{name}::jsonb" if sql_type == "jsonb" else f"{alias}.{name}"


_NAMES = ", ".join(name for name, _ in _SAGA_COLUMNS)


def _insert_new(new: Sequence[NewSaga], now: str, params: Params) -> str:
    states = [saga.state for saga in new]
    arrays = [
        params.add([s.saga_id for s in states], "text[]"),
        params.add([s.saga_type for s in states], "text[]"),
        params.add([s.definition_version for s in states], "int[]"),
        params.add([json_text(saga.trace_context) for saga in new], "text[]"),
        *_column_arrays(states, params),
    ]
    values = ", ".join(_cast(name, sql_type, "n") for name, sql_type in _SAGA_COLUMNS)
    return (
        f"INSERT INTO {saga_instance.fullname} (id, saga_type, definition_version, trace_context, {_NAMES}, "
        f"created_at, updated_at) SELECT n.id, n.saga_type, n.definition_version, n.trace_context::jsonb, {values}, "
        f"{now}, {now} FROM unnest({', '.join(arrays)}) AS n(id, saga_type, definition_version, trace_context, "
        f"{_NAMES}) ON CONFLICT (id) DO NOTHING RETURNING id, version, created_at"
    )


def _update(states: Sequence[SagaState], now: str, params: Params) -> str:
    arrays = [params.add([s.saga_id for s in states], "text[]"), *_column_arrays(states, params)]
    sets = ", ".join(f"{name} = {_cast(name, sql_type, 'u')}" for name, sql_type in _SAGA_COLUMNS)
    return (
        f"UPDATE {saga_instance.fullname} AS s SET {sets}, version = s.version + 1, updated_at = {now} "
        f"FROM unnest({', '.join(arrays)}) AS u(id, {_NAMES}) WHERE s.id = u.id RETURNING s.id, s.version, s.created_at"
    )


def _append(appends: Sequence[HistoryAppend], new_ids: set[str], now: str, params: Params) -> str:
    """History rows numbered after each saga's last ``seq`` (read in the same statement); the entries of a
    saga that was to be started here but already existed are left out (the caller retries the batch)."""
    rows: list[tuple[str, int, str, str | None, str, str | None, str, bool]] = []
    position: dict[str, int] = {}
    for append in appends:
        payloads = [dict(entry.payload) for entry in append.entries]
        payloads[-1]["state"] = dict(append.snapshot)
        for index, (entry, payload) in enumerate(zip(append.entries, payloads, strict=True)):
            position[append.saga_id] = position.get(append.saga_id, 0) + 1
            from_status = append.from_status.value if append.from_status and index == 0 else None
            row = (append.saga_id, position[append.saga_id], entry.type, from_status, append.to_status.value)
            rows.append((*row, entry.step, json_text(payload) or "{}", append.saga_id in new_ids))
    columns = zip(*rows, strict=True)
    types = ("text[]", "int[]", "text[]", "text[]", "text[]", "text[]", "text[]", "boolean[]")
    arrays = [params.add(list(values), sql_type) for values, sql_type in zip(columns, types, strict=True)]
    last = f"(SELECT max(p.seq) FROM {saga_event.fullname} AS p WHERE p.saga_id = e.saga_id)"
    return (
        f"INSERT INTO {saga_event.fullname} (saga_id, seq, type, from_status, to_status, step, payload, at) "
        f"SELECT e.saga_id, coalesce({last}, 0) + e.position, e.type, e.from_status, e.to_status, e.step, "
        f"e.payload::jsonb, {now} FROM unnest({', '.join(arrays)}) "
        "AS e(saga_id, position, type, from_status, to_status, step, payload, is_new) "
        "WHERE NOT e.is_new OR e.saga_id IN (SELECT id FROM new_sagas) RETURNING 1"
    )


async def write_batch(
    conn: AsyncConnection,
    *,
    new: Sequence[NewSaga],
    updated: Sequence[SagaState],
    appends: Sequence[HistoryAppend],
    records: Sequence[OutboxRecord],
    inline: bool,
    now: datetime,
) -> BatchWritten:
    """New sagas, changed sagas, their history and their outbox rows in one statement (one round trip)."""
    params = Params()
    at = params.add(now, "timestamptz")
    parts: list[str] = []
    if new:
        parts.append(f"new_sagas AS ({_insert_new(new, at, params)})")
    else:
        parts.append(
            "new_sagas AS (SELECT NULL::text AS id, NULL::int AS version, NULL::timestamptz AS created_at WHERE false)"
        )
    written_rows = "SELECT id, version, created_at FROM new_sagas"
    if updated:
        parts.append(f"updated AS ({_update(updated, at, params)})")
        written_rows += " UNION ALL SELECT id, version, created_at FROM updated"
    parts.append(f"written_rows AS ({written_rows})")
    appends = [a for a in appends if a.entries]
    if appends:
        parts.append(f"history AS ({_append(appends, {s.state.saga_id for s in new}, at, params)})")
    if records:
        parts.append(f"outbox AS ({outbox_insert(outbox, records, inline=inline, params=params)})")
    outbox_ids = "ARRAY(SELECT id FROM outbox ORDER BY id)" if records else "'{}'::bigint[]"
    rows = ", ".join(
        f"ARRAY(SELECT {c} FROM written_rows ORDER BY id) AS row_{c}" for c in ("id", "version", "created_at")
    )
    sql = (
        f"WITH {', '.join(parts)} SELECT ARRAY(SELECT id FROM new_sagas) AS inserted, {outbox_ids} AS outbox_ids, "
        f"{rows}"
    )
    row = await (await driver_connection(conn)).fetchrow(sql, *params.values)
    return BatchWritten(
        inserted=set(row["inserted"]),
        outbox=Written(ids=tuple(row["outbox_ids"]), records=tuple(records)),
        rows={
            saga_id: RowVersion(version, created_at)
            for saga_id, version, created_at in zip(
                row["row_id"], row["row_version"], row["row_created_at"], strict=True
            )
        },
    )
