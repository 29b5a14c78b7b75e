"""pgbench-style commit rate: N connections, each committing a one-row INSERT (or UPDATE of its own row) per
transaction as fast as it can, ``synchronous_commit = on``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from orchestrator.persistence import asyncpg_dsn

SCHEMA = "sagaline_bench_limits"
STATEMENTS = {
    "insert": f"INSERT INTO {SCHEMA}.row_per_commit (conn, n) VALUES ($1, $2)",
    "update": f"UPDATE {SCHEMA}.row_per_conn SET n = $2 WHERE conn = $1",
}


async def server_settings(database_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "max_connections")
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in names}
    finally:
        await conn.close()


async def _prepare(conn: Any, connections: int) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    await conn.execute(f"CREATE TABLE {SCHEMA}.row_per_commit (id bigserial PRIMARY KEY, conn int, n bigint)")
    await conn.execute(f"CREATE TABLE {SCHEMA}.row_per_conn (conn int PRIMARY KEY, n bigint)")
    await conn.execute(f"INSERT INTO {SCHEMA}.row_per_conn SELECT g, 0 FROM generate_series(0, $1) g", connections)


async def _worker(conn: Any, sql: str, index: int, stop_at: float) -> int:
    statement = await conn.prepare(sql)
    done = 0
    while time.monotonic() < stop_at:
        await statement.fetch(index, done)  # outside a transaction block: one statement, one commit
        done += 1
    return done


async def commits_per_s(database_url: str, kind: str, connections: int, seconds: float) -> float:
    dsn = asyncpg_dsn(database_url)
    conns = [await asyncpg.connect(dsn, server_settings={"synchronous_commit": "on"}) for _ in range(connections)]
    try:
        await _prepare(conns[0], connections)
        began = time.monotonic()
        counts = await asyncio.gather(
            *(_worker(c, STATEMENTS[kind], i, began + seconds) for i, c in enumerate(conns)),
        )
        return sum(counts) / (time.monotonic() - began)
    finally:
        await conns[0].execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        for conn in conns:
            await conn.close()
