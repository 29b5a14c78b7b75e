"""The outbox relay over a real broker and Postgres: woken by NOTIFY from another connection, publishes rows
with their headers and key, deletes them, and shares the table with other relays via SKIP LOCKED; rows their
writer publishes itself are left to it until the grace period has passed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orchestrator.messaging import (
    InlinePublisher,
    OutboxRecord,
    OutboxRelay,
    ensure_topics,
    make_producer,
    read_topic,
    write_outbox,
)
from orchestrator.migrate import upgrade
from orchestrator.persistence import asyncpg_dsn, create_engine, outbox
from orchestrator.settings import Settings
from tests.integration.helpers import eventually
from tests.support.infra import Infra

pytestmark = pytest.mark.integration


async def _settings(infra: Infra, database_url: str, prefix: str) -> Settings:
    await asyncio.to_thread(upgrade, database_url)
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=f"{prefix}{uuid.uuid4().hex[:6]}.",
    )
    await ensure_topics(settings)
    return settings


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _outbox_rows(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox))).scalar_one())


def _records(settings: Settings, keys: list[str]) -> list[OutboxRecord]:
    return [
        OutboxRecord(
            topic=settings.topics.events,
            key=key,
            headers={"sagaline-message-id": key},
            payload={"type": "SagaStarted", "saga_id": key, "saga_type": "t"},
        )
        for key in keys
    ]


async def _published_keys(settings: Settings) -> list[str]:
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topics.events)
    return sorted((r.key or b"").decode() for r in records)


async def test_notify_from_another_process_wakes_the_relays(infra: Infra, database_url: str) -> None:
    settings = await _settings(infra, database_url, "r")
    writer, relay_db = create_engine(database_url, pool_size=1), create_engine(database_url, pool_size=2)
    producer = make_producer(settings)
    await producer.start()
    # Two relays that would only poll once a minute: anything faster is NOTIFY at work.
    relays = [
        OutboxRelay(relay_db, outbox, producer, dsn=asyncpg_dsn(database_url), batch_size=7, poll_interval_s=60)
        for _ in range(2)
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await asyncio.sleep(1.0)  # both LISTENing
        keys = [f"k-{i}" for i in range(40)]
        async with writer.begin() as conn, AsyncSession(bind=conn) as session:
            await write_outbox(session, outbox, _records(settings, keys))
            await session.flush()

        async def published() -> None:
            assert await _published_keys(settings) == sorted(keys)

        await eventually(published, timeout_s=20)
        assert sum(r.published for r in relays) == len(keys), "each row published once"
        assert await _outbox_rows(writer) == 0
    finally:
        await _stop(tasks)
        await producer.stop()
        await writer.dispose()
        await relay_db.dispose()


async def test_inline_rows_publish_after_commit_and_orphans_wait_for_the_grace_period(
    infra: Infra, database_url: str
) -> None:
    """The writer publishes its rows itself and deletes them; rows whose writer died before publishing
    (written inline, never handed to a publisher) are the relay's only once older than the grace period,
    and nothing goes out twice."""
    settings = await _settings(infra, database_url, "i")
    db = create_engine(database_url, pool_size=3)
    producer = make_producer(settings)
    await producer.start()
    publisher = InlinePublisher(db, outbox, producer)
    relay = OutboxRelay(
        db,
        outbox,
        producer,
        dsn=asyncpg_dsn(database_url),
        poll_interval_s=0.2,
        grace_s=3.0,
        in_flight=publisher.pending_ids,
    )
    tasks = [asyncio.create_task(publisher.run()), asyncio.create_task(relay.run())]
    try:
        live, orphaned = [f"live-{i}" for i in range(20)], [f"orphan-{i}" for i in range(5)]
        async with db.begin() as conn:
            written = await write_outbox(conn, outbox, _records(settings, live), inline=True)
        async with db.begin() as conn:
            await write_outbox(conn, outbox, _records(settings, orphaned), inline=True)  # its writer "died"
        assert len(written.ids) == len(live)
        publisher.publish(written)

        async def live_published() -> None:
            assert await _published_keys(settings) == sorted(live)
            assert await _outbox_rows(db) == len(orphaned), "published rows deleted, orphans kept"

        await eventually(live_published, timeout_s=2.5, interval_s=0.1)
        assert relay.published == 0, "the relay left young inline rows alone"

        async def all_published() -> None:
            assert await _published_keys(settings) == sorted(live + orphaned)
            assert await _outbox_rows(db) == 0

        await eventually(all_published, timeout_s=20)
        assert (publisher.published, relay.published) == (len(live), len(orphaned)), "each row published once"
    finally:
        await _stop(tasks)
        await producer.stop()
        await db.dispose()
