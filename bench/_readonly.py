"""Read-only queries that leave ``pg_stat_database.xact_commit`` alone: each runs in a transaction that is rolled
back, so the harness's own polling never counts as a commit of the system under test."""

from __future__ import annotations

from typing import Any

import asyncpg

from orchestrator.persistence import asyncpg_dsn


async def connect(database_url: str) -> Any:
    # Custom plans: a generic plan made while the tables were small (a seq scan) would be kept as they grow.
    return await asyncpg.connect(asyncpg_dsn(database_url), server_settings={"plan_cache_mode": "force_custom_plan"})


async def fetch(conn: Any, sql: str, *args: object) -> list[Any]:
    await conn.execute("BEGIN READ ONLY")
    try:
        rows: list[Any] = await conn.fetch(sql, *args)
    finally:
        await conn.execute("ROLLBACK")
    return rows


async def fetchval(conn: Any, sql: str, *args: object) -> Any:
    rows = await fetch(conn, sql, *args)
    return rows[0][0] if rows else None
