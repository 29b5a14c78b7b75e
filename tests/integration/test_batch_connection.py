"""The connection a service's consumer keeps between batches, over real Postgres: kept while batches end clean,
handed back when a batch raises or leaves a transaction open (whose work the pool then rolls back), replaced
after Postgres closed it, and handed back for good before the engine is disposed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.messaging import driver_connection
from orchestrator.persistence import BatchConnection, create_engine
from orchestrator.transient import backoff_forever

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS kept_probe (n int)"))
        await conn.execute(text("TRUNCATE kept_probe"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def kept(db: AsyncEngine) -> AsyncIterator[Callable[[], BatchConnection]]:
    """Makes connections for batches that keep, as the host does, and releases them before the engine goes."""
    made: list[BatchConnection] = []

    def make() -> BatchConnection:
        made.append(BatchConnection(db, keep=True))
        return made[-1]

    yield make
    for batches in made:
        await batches.release()


async def _backend(batches: BatchConnection) -> int:
    async with batches.use() as conn, conn.begin():
        return int(await (await driver_connection(conn)).fetchval("SELECT pg_backend_pid()"))


def _checked_out(db: AsyncEngine) -> int:
    return int(db.sync_engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_a_kept_connection_serves_every_clean_batch_until_released(
    db: AsyncEngine, kept: Callable[[], BatchConnection]
) -> None:
    batches = kept()

    pids = {await _backend(batches) for _ in range(5)}

    assert len(pids) == 1
    assert _checked_out(db) == 1
    await batches.release()
    assert _checked_out(db) == 0
    await _backend(batches)  # a use after release checks out again, and keeps that one
    assert _checked_out(db) == 1


async def test_without_keep_each_batch_gives_its_connection_back(db: AsyncEngine) -> None:
    batches = BatchConnection(db)

    await _backend(batches)

    assert _checked_out(db) == 0


async def test_a_batch_that_raises_hands_the_connection_back(
    db: AsyncEngine, kept: Callable[[], BatchConnection]
) -> None:
    batches = kept()
    await _backend(batches)

    async def broken_batch() -> None:
        async with batches.use() as conn, conn.begin():
            await conn.execute(text("INSERT INTO kept_probe VALUES (1)"))
            raise RuntimeError("the handler broke")

    with pytest.raises(RuntimeError):
        await broken_batch()

    assert _checked_out(db) == 0
    async with db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM kept_probe"))).scalar_one() == 0


async def test_a_transaction_left_open_on_the_driver_is_rolled_back_not_carried_into_the_next_batch(
    db: AsyncEngine, kept: Callable[[], BatchConnection]
) -> None:
    batches = kept()
    async with batches.use() as conn:
        await (await driver_connection(conn)).execute("INSERT INTO kept_probe VALUES (2)")  # BEGIN, never COMMIT

    assert _checked_out(db) == 0
    async with batches.use() as conn:
        driver = await driver_connection(conn, begin=False)
        assert not driver.is_in_transaction()
        assert await driver.fetchval("SELECT count(*) FROM kept_probe") == 0


async def test_a_kept_connection_postgres_closed_is_replaced(
    db: AsyncEngine, kept: Callable[[], BatchConnection]
) -> None:
    batches = kept()
    dead = await _backend(batches)
    async with db.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": dead})
    await asyncio.sleep(0.2)  # the kept connection notices the closed socket

    fresh = await asyncio.wait_for(backoff_forever(lambda: _backend(batches), what="test", max_wait_s=0.2), timeout=10)

    assert fresh != dead
    assert _checked_out(db) == 1
