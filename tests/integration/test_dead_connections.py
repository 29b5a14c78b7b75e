"""A pooled connection that Postgres closed (a restart, a terminated backend) is thrown away by the hot-path
statements that bypass SQLAlchemy, over real Postgres: the retry gets a fresh connection instead of the dead one
again and again (which turned every command of a service into a handler error after a Postgres restart)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.messaging import driver_connection
from orchestrator.persistence import create_engine
from orchestrator.transient import backoff_forever, is_transient

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    db = create_engine(database_url, pool_size=1)
    yield db
    await db.dispose()


async def _backend_pid(db: AsyncEngine, *, begin: bool) -> int:
    async with db.connect() as conn:
        pid = int(await (await driver_connection(conn, begin=begin)).fetchval("SELECT pg_backend_pid()"))
        await conn.commit()
        return pid


async def _terminate(database_url: str, pid: int) -> None:
    killer = create_engine(database_url, pool_size=1)
    try:
        async with killer.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        await killer.dispose()
    await asyncio.sleep(0.2)  # the pooled connection notices the closed socket


@pytest.mark.parametrize("begin", [True, False], ids=["in a transaction", "a statement of its own"])
async def test_a_connection_postgres_closed_is_replaced(engine: AsyncEngine, database_url: str, begin: bool) -> None:
    dead = await _backend_pid(engine, begin=begin)
    await _terminate(database_url, dead)

    fresh = await asyncio.wait_for(
        backoff_forever(lambda: _backend_pid(engine, begin=begin), what="test", max_wait_s=0.2), timeout=10
    )

    assert fresh != dead


def test_a_driver_adapter_error_caused_by_a_lost_connection_is_transient() -> None:
    class AdapterError(Exception):  # what SQLAlchemy's asyncpg adapter raises where it translates errors itself
        pass

    translated = AdapterError("connection is closed")
    translated.__cause__ = asyncpg.InterfaceError("connection is closed")

    assert is_transient(translated)
    assert not is_transient(AdapterError("a bug"))
