"""Outbox writes and inbox claims, inside the caller's transaction (an ORM session or a Core connection)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, any_, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from orchestrator.messaging._driver import Params, driver_connection, json_text
from orchestrator.persistence._db import text_ids

Executor = AsyncSession | AsyncConnection


def notify_channel(schema: str) -> str:
    return f"sagaline_outbox_{schema}"


@dataclass(frozen=True, kw_only=True)
class OutboxRecord:
    topic: str
    key: str | None
    headers: Mapping[str, str]
    payload: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class StoredReply:
    topic: str
    headers: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Written:
    """The outbox rows one transaction wrote, for its process to publish right after the commit."""

    ids: Sequence[int]
    records: Sequence[OutboxRecord]


Publish = Callable[[Written], None]
"""Takes a committed transaction's outbox rows for publishing (``InlinePublisher.publish``); never blocks."""


def outbox_insert(table: Table, records: Sequence[OutboxRecord], *, inline: bool, params: Params) -> str:
    """``INSERT … RETURNING id`` of ``records`` as one statement, whatever their number (for a CTE too)."""
    return (
        f"INSERT INTO {table.fullname} (topic, key, headers, payload, inline_publish) "  # noqa: S608 - values are parameters
        f"SELECT topic, key, headers::jsonb, payload::jsonb, {params.add(inline, 'boolean')} FROM unnest("
        f"{params.add([r.topic for r in records], 'text[]')}, {params.add([r.key for r in records], 'text[]')}, "
        f"{params.add([json_text(r.headers) for r in records], 'text[]')}, "
        f"{params.add([json_text(r.payload) for r in records], 'text[]')}"
        ") AS row(topic, key, headers, payload) RETURNING id"
    )


async def write_outbox(
    executor: Executor, table: Table, records: Sequence[OutboxRecord], *, inline: bool = False
) -> Written:
    """Insert rows in one statement. ``inline``: this process publishes them itself after the commit
    (``Publish``), so no relay is woken; otherwise a trigger notifies the relays on commit (``notify_channel``)."""
    if not records:
        return Written(ids=(), records=())
    params = Params()
    sql = outbox_insert(table, records, inline=inline, params=params)
    rows = await (await driver_connection(executor)).fetch(sql, *params.values)
    return Written(ids=tuple(row["id"] for row in rows), records=tuple(records))


def inbox_claim(table: Table, consumer: str, message_ids: Collection[str], *, params: Params) -> str:
    """``INSERT … RETURNING message_id`` of the ids this consumer sees for the first time (for a CTE too); the
    primary key makes it race-free."""
    return (
        f"INSERT INTO {table.fullname} (consumer, message_id) "
        f"SELECT {params.add(consumer, 'text')}, unnest({params.add(list(message_ids), 'text[]')}) "
        "ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id"
    )


async def claim_inbox_many(executor: Executor, table: Table, consumer: str, message_ids: Collection[str]) -> set[str]:
    """The ids among ``message_ids`` this consumer sees for the first time, claimed in one statement. An id
    given twice is claimed once: the caller treats its second occurrence as the duplicate it is, and
    reports duplicates (``telemetry.inbox_duplicate``) as it meets them."""
    if not message_ids:
        return set()
    params = Params()
    sql = inbox_claim(table, consumer, message_ids, params=params)
    rows = await (await driver_connection(executor)).fetch(sql, *params.values)
    return {row["message_id"] for row in rows}


def _answered_claim(table: Table, consumer: str, replies: Sequence[tuple[str, StoredReply]], *, params: Params) -> str:
    """``INSERT … RETURNING message_id`` claiming ids together with their definitive replies (for a CTE); an id
    claimed before (or by a transaction committing first) is left out."""
    return (
        f"INSERT INTO {table.fullname} (consumer, message_id, reply_topic, reply_headers, reply_payload) "  # noqa: S608
        f"SELECT {params.add(consumer, 'text')}, r.message_id, r.topic, r.headers::jsonb, r.payload::jsonb "
        f"FROM unnest({params.add([message_id for message_id, _ in replies], 'text[]')}, "
        f"{params.add([reply.topic for _, reply in replies], 'text[]')}, "
        f"{params.add([json_text(reply.headers) for _, reply in replies], 'text[]')}, "
        f"{params.add([json_text(reply.payload) for _, reply in replies], 'text[]')}"
        ") AS r(message_id, topic, headers, payload) "
        "ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id"
    )


async def claim_answered(
    executor: Executor,
    inbox: Table,
    outbox: Table,
    consumer: str,
    replies: Sequence[tuple[str, StoredReply]],
    records: Sequence[OutboxRecord],
    *,
    inline: bool,
) -> tuple[int, Written]:
    """Claim messages already handled, store their replies and insert the outbox rows, in one statement.
    Returns how many ids were claimed: fewer than given means some were duplicates, and the transaction
    must not commit."""
    params = Params()
    parts = [f"claimed AS ({_answered_claim(inbox, consumer, replies, params=params)})"]
    if records:
        parts.append(f"written AS ({outbox_insert(outbox, records, inline=inline, params=params)})")
    ids = "array(SELECT id FROM written)" if records else "'{}'::bigint[]"
    sql = f"WITH {', '.join(parts)} SELECT (SELECT count(*) FROM claimed) AS claimed, {ids} AS ids"  # noqa: S608
    row = await (await driver_connection(executor)).fetchrow(sql, *params.values)
    return int(row["claimed"]), Written(ids=tuple(row["ids"]), records=tuple(records))


async def release_inbox(executor: Executor, table: Table, consumer: str, message_ids: Collection[str]) -> None:
    """Give claims back, so the message can be processed again (a rejected or retryable message)."""
    if message_ids:
        await executor.execute(
            delete(table).where((table.c.consumer == consumer) & (table.c.message_id == any_(text_ids()))),
            {"ids": list(message_ids)},
        )


async def store_replies(
    executor: Executor, table: Table, consumer: str, replies: Iterable[tuple[str, StoredReply]]
) -> None:
    stored = list(replies)
    if stored:
        await (await driver_connection(executor)).execute(
            f"UPDATE {table.fullname} AS i SET reply_topic = r.topic, reply_headers = r.headers::jsonb, "  # noqa: S608
            "reply_payload = r.payload::jsonb FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) "
            "AS r(message_id, topic, headers, payload) WHERE i.consumer = $1::text AND i.message_id = r.message_id",
            consumer,
            [message_id for message_id, _ in stored],
            [reply.topic for _, reply in stored],
            [json_text(reply.headers) for _, reply in stored],
            [json_text(reply.payload) for _, reply in stored],
        )


async def stored_replies(
    executor: Executor, table: Table, consumer: str, message_ids: Collection[str]
) -> dict[str, StoredReply]:
    """The definitive replies stored for these message ids (ids without one are left out)."""
    if not message_ids:
        return {}
    rows = await executor.execute(
        select(table.c.message_id, table.c.reply_topic, table.c.reply_headers, table.c.reply_payload).where(
            (table.c.consumer == consumer) & (table.c.message_id == any_(text_ids())) & table.c.reply_topic.is_not(None)
        ),
        {"ids": list(message_ids)},
    )
    return {
        row.message_id: StoredReply(
            topic=row.reply_topic, headers=dict(row.reply_headers), payload=dict(row.reply_payload)
        )
        for row in rows
    }
