# ruff: noqa: S608 - table and column names are our own constants; every value is a parameter
"""Saga rows, history and outbox rows of a batch: locked in one statement, written in one."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from orchestrator.persistence._sagas import saga_columns, state_from_row, transition_entries
from orchestrator.persistence._tables import inbox, outbox, saga_instance, saga_transition


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


@dataclass(frozen=True)
class ClaimedAndLocked:
    claimed: set[str]  # the message ids seen for the first time
    sagas: Locked
    last_seqs: dict[str, int]  # the last history seq of the sagas taken from kept states


class WriteConflict(Exception):  # noqa: N818 - a signal to handle the batch under row locks, not an error
    """A batch written without row locks found what it assumed out of date; nothing was written."""


WRITE_CONFLICT_SQLSTATE = "SL409"  # raised by sagaline.write_conflict() (migration 0006)


@dataclass(frozen=True, kw_only=True)
class Unlocked:
    """What a batch computed from kept states, without locking its sagas' rows, assumed: that ``claims`` are
    seen for the first time by ``consumer`` and that every saga in ``rows`` is still at that version.
    ``write_batch`` claims them and writes only if all of it holds (and every new saga is inserted)."""

    consumer: str
    claims: Sequence[str]
    rows: Mapping[str, RowVersion]


@dataclass(frozen=True, kw_only=True)
class Basis:
    """What a batch's transitions were computed from, as far as writing them needs to know: the last history
    seq of sagas taken from kept states (the others' are read), and whether their rows were locked."""

    last_seqs: Mapping[str, int] = field(default_factory=dict)
    unlocked: Unlocked | None = None


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
) -> ClaimedAndLocked:
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
    locked = [row for row in rows if row["id"] is not None]
    return ClaimedAndLocked(
        claimed=set(rows[0]["claimed_ids"]),
        sagas=_locked(locked, among),
        last_seqs={row["id"]: among[row["id"]].row.last_seq for row in locked if row["kept"]},
    )


@dataclass(frozen=True)
class BatchWritten:
    inserted: set[str]  # new sagas actually inserted (an id that already existed is left alone)
    outbox: Written
    rows: dict[str, RowVersion]  # the saga rows inserted or updated, as they now are (unless their last seq is unknown)


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


def _update(states: Sequence[SagaState], now: str, params: Params, expected: Mapping[str, RowVersion] | None) -> str:
    """``expected``: update only rows still at these versions (in id order, as the lock path locks them)."""
    if expected is not None:
        states = sorted(states, key=lambda s: s.saga_id)
    arrays = [params.add([s.saga_id for s in states], "text[]"), *_column_arrays(states, params)]
    names, where = _NAMES, "s.id = u.id"
    if expected is not None:
        rows = [expected[s.saga_id] for s in states]
        arrays += [
            params.add([r.version for r in rows], "int[]"),
            params.add([r.created_at for r in rows], "timestamptz[]"),
        ]
        names += ", expected_version, expected_created_at"
        where += " AND s.version = u.expected_version AND s.created_at = u.expected_created_at"
    sets = ", ".join(f"{name} = {_cast(name, sql_type, 'u')}" for name, sql_type in _SAGA_COLUMNS)
    return (
        f"UPDATE {saga_instance.fullname} AS s SET {sets}, version = s.version + 1, updated_at = {now} "
        f"FROM unnest({', '.join(arrays)}) AS u(id, {names}) WHERE {where} RETURNING s.id, s.version, s.created_at"
    )


def _appended(appends: Sequence[HistoryAppend]) -> dict[str, int]:
    """Entries appended per saga."""
    counts: dict[str, int] = {}
    for append in appends:
        counts[append.saga_id] = counts.get(append.saga_id, 0) + len(append.entries)
    return counts


def _append(
    appends: Sequence[HistoryAppend], new_ids: set[str], last_seqs: Mapping[str, int], now: str, params: Params
) -> str:
    """One history row per transition, its entries numbered after the saga's last ``seq``: from ``last_seqs``
    where given, else read in the same statement (an index lookup per row); the transitions of a saga that was
    to be started here but already existed are left out (the caller retries the batch)."""
    rows: list[tuple[str, int | None, int, int, str | None, str, str, bool]] = []
    position: dict[str, int] = {}
    for append in appends:
        entries = transition_entries(append.entries, append.snapshot)
        first = position.get(append.saga_id, 0) + 1
        position[append.saga_id] = first + len(entries) - 1
        from_status = append.from_status.value if append.from_status else None
        row = (append.saga_id, last_seqs.get(append.saga_id), first, len(entries) - 1, from_status)
        rows.append((*row, append.to_status.value, json_text(entries) or "[]", append.saga_id in new_ids))
    columns = zip(*rows, strict=True)
    types = ("text[]", "int[]", "int[]", "int[]", "text[]", "text[]", "text[]", "boolean[]")
    arrays = [params.add(list(values), sql_type) for values, sql_type in zip(columns, types, strict=True)]
    read_last = (
        f"(SELECT p.last_seq FROM {saga_transition.fullname} AS p WHERE p.saga_id = e.saga_id "
        "ORDER BY p.first_seq DESC LIMIT 1)"
    )
    return (
        f"INSERT INTO {saga_transition.fullname} (saga_id, first_seq, last_seq, from_status, to_status, at, entries) "
        f"SELECT e.saga_id, f.seq, f.seq + e.more, e.from_status, e.to_status, {now}, e.entries::jsonb "
        f"FROM unnest({', '.join(arrays)}) AS e(saga_id, last_seq, position, more, from_status, to_status, entries, "
        f"is_new) CROSS JOIN LATERAL (SELECT coalesce(e.last_seq, {read_last}, 0) + e.position AS seq) AS f "
        "WHERE NOT e.is_new OR e.saga_id IN (SELECT id FROM new_sagas) RETURNING saga_id, last_seq AS seq"
    )


def _assumptions(unlocked: Unlocked, new: int, updated: Collection[str], params: Params) -> str:
    """The ``Unlocked`` checks as one expression: NULL when they hold, else an error that undoes the statement.
    An updated row's version is checked by its update; the rows only read (an ignored reply's saga) are
    looked up one by one here (a scalar subquery per row, so never a scan of the table)."""
    read_only = {saga_id: row for saga_id, row in unlocked.rows.items() if saga_id not in updated}
    unchanged = "0"
    if read_only:
        unchanged = (
            f"(SELECT count(*) FROM unnest({params.add(list(read_only), 'text[]')}, "
            f"{params.add([r.version for r in read_only.values()], 'int[]')}, "
            f"{params.add([r.created_at for r in read_only.values()], 'timestamptz[]')}) AS k(id, version, created_at) "
            f"WHERE (SELECT s.version = k.version AND s.created_at = k.created_at FROM {saga_instance.fullname} AS s "
            "WHERE s.id = k.id))"
        )
    checks = {
        "claimed": ("(SELECT count(*) FROM claimed)", len(set(unlocked.claims))),
        "unchanged": (unchanged, len(read_only)),
        "inserted": ("(SELECT count(*) FROM new_sagas)", new),
        "updated": ("(SELECT count(*) FROM updated)" if updated else "0", len(updated)),
    }
    holds = " AND ".join(f"{count} = {params.add(n, 'bigint')}" for count, n in checks.values())
    return f"CASE WHEN {holds} THEN NULL ELSE {saga_instance.schema}.write_conflict('claims or rows changed') END"


async def write_batch(
    conn: AsyncConnection,
    *,
    new: Sequence[NewSaga],
    updated: Sequence[SagaState],
    appends: Sequence[HistoryAppend],
    records: Sequence[OutboxRecord],
    inline: bool,
    now: datetime,
    basis: Basis | None = None,
) -> BatchWritten:
    """New sagas, changed sagas, their history and their outbox rows in one statement (one round trip).
    With ``basis.unlocked`` (the batch was computed without row locks) the statement also claims the batch's
    messages, outside any transaction (it is its own), and raises ``WriteConflict`` having written nothing if
    what the batch assumed no longer holds."""
    basis = basis or Basis()
    unlocked = basis.unlocked
    params = Params()
    appends = [a for a in appends if a.entries]
    # A placeholder no part of the statement uses would have no type: only a batch that writes a saga uses it.
    at = params.add(now, "timestamptz") if new or updated or appends else "NULL"
    parts: list[str] = []
    if unlocked is not None:
        parts.append(f"claimed AS ({inbox_claim(inbox, unlocked.consumer, unlocked.claims, params=params)})")
    if new:
        parts.append(f"new_sagas AS ({_insert_new(new, at, params)})")
    else:
        parts.append(
            "new_sagas AS (SELECT NULL::text AS id, NULL::int AS version, NULL::timestamptz AS created_at WHERE false)"
        )
    written_rows = "SELECT id, version, created_at FROM new_sagas"
    if updated:
        expected = unlocked.rows if unlocked is not None else None
        parts.append(f"updated AS ({_update(updated, at, params, expected)})")
        written_rows += " UNION ALL SELECT id, version, created_at FROM updated"
    parts.append(f"written_rows AS ({written_rows})")
    new_ids = {s.state.saga_id for s in new}
    known_seqs = dict(basis.last_seqs)
    appended = _appended(appends)
    read_seqs = sorted(saga_id for saga_id in appended if saga_id not in known_seqs)
    if appends:
        parts.append(f"history AS ({_append(appends, new_ids, known_seqs, at, params)})")
        last_read = (
            f"(SELECT saga_id, max(seq) AS seq FROM history WHERE saga_id = ANY({params.add(read_seqs, 'text[]')}) "
            "GROUP BY saga_id)"
        )
    else:
        last_read = "(SELECT NULL::text AS saga_id, NULL::int AS seq WHERE false)"
    if records:
        parts.append(f"outbox AS ({outbox_insert(outbox, records, inline=inline, params=params)})")
    outbox_ids = "ARRAY(SELECT id FROM outbox ORDER BY id)" if records else "'{}'::bigint[]"
    rows = ", ".join(
        f"ARRAY(SELECT {c} FROM written_rows ORDER BY id) AS row_{c}" for c in ("id", "version", "created_at")
    )
    updated_ids = {state.saga_id for state in updated}
    check = f", {_assumptions(unlocked, len(new), updated_ids, params)} AS conflict" if unlocked is not None else ""
    sql = (
        f"WITH {', '.join(parts)}, last_read AS {last_read} SELECT ARRAY(SELECT id FROM new_sagas) AS inserted, "
        f"{outbox_ids} AS outbox_ids, {rows}, ARRAY(SELECT saga_id FROM last_read ORDER BY saga_id) AS read_ids, "
        f"ARRAY(SELECT seq FROM last_read ORDER BY saga_id) AS read_seqs{check}"
    )
    driver = await driver_connection(conn, begin=unlocked is None)
    try:
        row = await driver.fetchrow(sql, *params.values)
    except Exception as exc:
        if unlocked is not None and _conflicted(exc):
            raise WriteConflict(str(exc)) from exc
        raise
    seqs = {saga_id: known_seqs[saga_id] + appended.get(saga_id, 0) for saga_id in known_seqs}
    seqs.update(zip(row["read_ids"], row["read_seqs"], strict=True))
    return BatchWritten(
        inserted=set(row["inserted"]),
        outbox=Written(ids=tuple(row["outbox_ids"]), records=tuple(records)),
        rows={
            saga_id: RowVersion(version, created_at, seqs[saga_id])
            for saga_id, version, created_at in zip(
                row["row_id"], row["row_version"], row["row_created_at"], strict=True
            )
            if saga_id in seqs
        },
    )


# What undoes a statement written without row locks because a concurrent writer got there first: its own check,
# a history seq or message id another transaction took, a deadlock with one.
_CONFLICT_SQLSTATES = frozenset({WRITE_CONFLICT_SQLSTATE, "23505", "40P01", "40001"})


def _conflicted(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) in _CONFLICT_SQLSTATES
