"""Outbox writes and inbox claims, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator import telemetry


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


async def write_outbox(session: AsyncSession, table: Table, records: list[OutboxRecord]) -> None:
    """Insert rows; on commit, a trigger on the table notifies relays in other processes (``notify_channel``)."""
    if not records:
        return
    await session.execute(
        insert(table),
        [{"topic": r.topic, "key": r.key, "headers": dict(r.headers), "payload": dict(r.payload)} for r in records],
    )


async def claim_inbox(session: AsyncSession, table: Table, consumer: str, message_id: str) -> bool:
    """True the first time a message id is seen by this consumer; the primary key makes it race-free."""
    stmt = (
        pg_insert(table)
        .values(consumer=consumer, message_id=message_id)
        .on_conflict_do_nothing(index_elements=["consumer", "message_id"])
        .returning(table.c.message_id)
    )
    claimed = (await session.execute(stmt)).first() is not None
    if not claimed:
        telemetry.inbox_duplicate(consumer)
    return claimed


async def store_reply(session: AsyncSession, table: Table, consumer: str, message_id: str, reply: StoredReply) -> None:
    await session.execute(
        update(table)
        .where((table.c.consumer == consumer) & (table.c.message_id == message_id))
        .values(reply_topic=reply.topic, reply_headers=reply.headers, reply_payload=reply.payload),
    )


async def stored_reply(session: AsyncSession, table: Table, consumer: str, message_id: str) -> StoredReply | None:
    row = (
        await session.execute(
            select(table.c.reply_topic, table.c.reply_headers, table.c.reply_payload).where(
                (table.c.consumer == consumer) & (table.c.message_id == message_id),
            ),
        )
    ).first()
    if row is None or row.reply_topic is None:
        return None
    return StoredReply(topic=row.reply_topic, headers=dict(row.reply_headers), payload=dict(row.reply_payload))
