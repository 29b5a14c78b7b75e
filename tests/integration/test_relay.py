"""The outbox relay over a real broker and Postgres: woken by NOTIFY from another connection, publishes rows
with their headers and key, deletes them, and shares the table with other relays via SKIP LOCKED."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.messaging import OutboxRecord, OutboxRelay, ensure_topics, make_producer, read_topic, write_outbox
from orchestrator.migrate import upgrade
from orchestrator.persistence import asyncpg_dsn, create_engine, outbox
from orchestrator.settings import Settings
from tests.integration.helpers import eventually
from tests.support.infra import Infra

pytestmark = pytest.mark.integration


async def test_notify_from_another_process_wakes_the_relays(infra: Infra, database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=f"r{uuid.uuid4().hex[:6]}.",
    )
    await ensure_topics(settings)
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
            await write_outbox(
                session,
                outbox,
                [
                    OutboxRecord(
                        topic=settings.topics.events,
                        key=key,
                        headers={"sagaline-message-id": key},
                        payload={"type": "SagaStarted", "saga_id": key, "saga_type": "t"},
                    )
                    for key in keys
                ],
            )
            await session.flush()

        async def published() -> list[str]:
            records = await read_topic(settings.kafka_bootstrap_servers, settings.topics.events)
            got = sorted((r.key or b"").decode() for r in records)
            assert got == sorted(keys), f"{len(got)} of {len(keys)} published"
            return got

        await eventually(published, timeout_s=20)
        assert sum(r.published for r in relays) == len(keys), "each row published once"
        async with writer.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == 0
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await producer.stop()
        await writer.dispose()
        await relay_db.dispose()
