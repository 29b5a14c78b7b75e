"""A participant of a test's own, in a fresh schema, driven straight through its command processor (no broker):
the kit's batches over real Postgres."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Command, CreateOrder, Envelope
from orchestrator.messaging import Incoming, RecordRef, Written, body_bytes, decode, encode_body, kafka_headers
from orchestrator.migrate import upgrade
from orchestrator.persistence import create_engine
from orchestrator.settings import Settings
from participants.kit import CommandProcessor, Participant


def command_record(command: Command, offset: int, message_id: str | None = None) -> Incoming:
    """``command`` as a decoded record of the saga named after its ``order_id``."""
    order_id = command.order_id  # type: ignore[attr-defined]  # every command the kit tests send has one
    envelope = Envelope(
        message_id=message_id or str(uuid.uuid4()), type=command.type_name(), saga_id=order_id, step="step"
    )
    record = RecordRef(
        topic="kit.commands",
        partition=0,
        offset=offset,
        key=order_id.encode(),
        value=body_bytes(encode_body(command)),
        headers=tuple(kafka_headers(envelope.to_headers())),
    )
    return decode(record, require_envelope=True)


def create_order(order_id: str, offset: int, message_id: str | None = None) -> Incoming:
    return command_record(CreateOrder(order_id=order_id, customer_id="c", amount_cents=1), offset, message_id)


@asynccontextmanager
async def kit_processor(
    database_url: str, kit: Participant, published: list[Written]
) -> AsyncIterator[tuple[AsyncEngine, CommandProcessor]]:
    """``kit``'s tables created in its schema (dropped at exit) and its processor, whose replies are collected
    in ``published`` instead of being sent."""
    await asyncio.to_thread(upgrade, database_url)
    db = create_engine(database_url, pool_size=2)
    try:
        async with db.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {kit.schema}"))
            await conn.run_sync(kit.metadata.create_all)
        yield db, kit.processor(db, Settings(database_url=database_url), publish=published.append)
    finally:
        async with db.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {kit.schema} CASCADE"))
        await db.dispose()
