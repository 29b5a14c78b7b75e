"""Read-only queries an operator runs: filtered, paginated lists and one saga with its history."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from orchestrator.definition import SagaStatus
from orchestrator.persistence import saga_event, saga_instance

LIVE = (SagaStatus.RUNNING.value, SagaStatus.COMPENSATING.value)
DEADLINE_GRACE = timedelta(seconds=5)  # the sweeper acts within its interval; past this, nobody is sweeping


class BadQueryError(ValueError):
    """A filter or cursor that cannot be used; the message says what is expected."""


@dataclass(frozen=True, kw_only=True)
class SagaFilter:
    """``None`` means "any". ``stuck`` selects sagas that need an operator's eye: failed ones, and live ones
    that have not changed for ``stuck_for`` or whose deadline passed without the sweeper acting."""

    status: SagaStatus | None = None
    saga_type: str | None = None
    definition_version: int | None = None
    step: str | None = None
    older_than: timedelta | None = None
    stuck: bool = False
    stuck_for: timedelta = timedelta(seconds=60)

    @classmethod
    def parse(
        cls,
        *,
        status: SagaStatus | None = None,
        saga_type: str | None = None,
        definition_version: int | None = None,
        step: str | None = None,
        older_than: str | None = None,
        stuck: bool = False,
        stuck_for: str = "60s",
    ) -> SagaFilter:
        """From the text an operator types: durations like ``90s``, ``10m``; raises ``BadQueryError``."""
        return cls(
            status=status,
            saga_type=saga_type,
            definition_version=definition_version,
            step=step,
            older_than=parse_duration(older_than) if older_than else None,
            stuck=stuck,
            stuck_for=parse_duration(stuck_for),
        )


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(updated_at: datetime, saga_id: str) -> str:
    raw = json.dumps([updated_at.isoformat(), saga_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, saga_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(at), str(saga_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadQueryError(f"cursor {cursor!r} is not one this API returned; start again without it") from exc


def _filtered(query: Select[Any], where: SagaFilter, now: datetime) -> Select[Any]:
    c = saga_instance.c
    if where.status is not None:
        query = query.where(c.status == where.status.value)
    if where.saga_type is not None:
        query = query.where(c.saga_type == where.saga_type)
    if where.definition_version is not None:
        query = query.where(c.definition_version == where.definition_version)
    if where.step is not None:
        query = query.where(c.step == where.step)
    if where.older_than is not None:
        query = query.where(c.created_at <= now - where.older_than)
    if where.stuck:
        live = c.status.in_(LIVE)
        quiet = c.updated_at <= now - where.stuck_for
        overdue = c.deadline_at <= now - DEADLINE_GRACE
        query = query.where(or_(c.status == SagaStatus.FAILED.value, and_(live, or_(quiet, overdue))))
    return query


async def list_sagas(
    conn: AsyncConnection,
    where: SagaFilter,
    *,
    now: datetime,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Newest change first; ``cursor`` continues after the last row of the previous page (keyset pagination,
    stable while sagas keep changing)."""
    c = saga_instance.c
    query = _filtered(select(saga_instance), where, now).order_by(c.updated_at.desc(), c.id.desc()).limit(limit + 1)
    if cursor is not None:
        at, saga_id = decode_cursor(cursor)
        query = query.where(tuple_(c.updated_at, c.id) < tuple_(at, saga_id))
    rows = [dict(r) for r in (await conn.execute(query)).mappings().all()]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]["updated_at"], rows[-1]["id"]) if more and rows else None)


async def load_saga(conn: AsyncConnection, saga_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The saga row (None if unknown) and its history in order."""
    row = (await conn.execute(select(saga_instance).where(saga_instance.c.id == saga_id))).mappings().first()
    if row is None:
        return None, []
    events = await conn.execute(
        select(saga_event).where(saga_event.c.saga_id == saga_id).order_by(saga_event.c.seq),
    )
    return dict(row), [dict(e) for e in events.mappings().all()]


async def saga_page(
    conn: AsyncConnection, *, after: str | None, limit: int
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Sagas in id order after ``after``, each with its history: two queries a page (for ``verify --all``)."""
    query = select(saga_instance).order_by(saga_instance.c.id).limit(limit)
    if after is not None:
        query = query.where(saga_instance.c.id > after)
    rows = [dict(r) for r in (await conn.execute(query)).mappings().all()]
    history: dict[str, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
    if rows:
        events = await conn.execute(
            select(saga_event)
            .where(saga_event.c.saga_id.in_(list(history)))
            .order_by(saga_event.c.saga_id, saga_event.c.seq),
        )
        for event in events.mappings().all():
            history[event["saga_id"]].append(dict(event))
    return [(row, history[row["id"]]) for row in rows]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d``."""
    value = text.strip().lower()
    unit = value[-1] if value and value[-1] in _UNITS else "s"
    number = value[:-1] if value and value[-1] in _UNITS else value
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise BadQueryError(f"{text!r} is not a duration; use e.g. 90s, 10m, 2h or 1d") from None
    if seconds < 0:
        raise BadQueryError(f"{text!r}: a duration cannot be negative")
    return timedelta(seconds=seconds)
