"""Statements a handler sends straight to asyncpg, in the batch's transaction: the fast path for hot handlers.

Per statement, SQLAlchemy's session, cache key, compile and result processing cost a participant more Python
CPU than asyncpg and the round trip together (bench/RESULTS.md, "The push, step 4"). A handler on the hot path
writes fixed SQL with ``$n`` parameters here; asyncpg prepares each text once per connection. Everything else
(compensations, rare paths) can stay on ``tx.connection``: both are the same connection and transaction."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from orchestrator.messaging import driver_connection


class Row(Protocol):
    """One result row (an ``asyncpg.Record``): by column name or position."""

    def __getitem__(self, key: str | int, /) -> Any: ...


class Sql:
    """The open transaction's driver connection, found once per batch (its first use sends the ``BEGIN``)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._sa_connection = connection
        self._connection: Any = None

    async def _driver(self) -> Any:
        if self._connection is None:
            self._connection = await driver_connection(self._sa_connection)
        return self._connection

    async def fetch(self, query: str, *args: Any) -> list[Row]:
        return list(await (await self._driver()).fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Row | None:
        row: Row | None = await (await self._driver()).fetchrow(query, *args)
        return row

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await (await self._driver()).fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        """Runs the statement; returns its status tag (``"INSERT 0 1"``)."""
        status: str = await (await self._driver()).execute(query, *args)
        return status
