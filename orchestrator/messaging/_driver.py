"""Hot-path statements sent straight to asyncpg, inside the transaction SQLAlchemy opened.

Per statement, SQLAlchemy's cache-key, compile, parameter and result processing cost more Python CPU than
asyncpg and Postgres together (bench/RESULTS.md, "The push"). The few statements every consumed batch runs
therefore go to the driver connection as fixed SQL with array parameters (one prepared statement, whatever
the batch size); everything else stays SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from orchestrator.persistence._db import json_text as _json


async def driver_connection(executor: AsyncSession | AsyncConnection, *, begin: bool = True) -> Any:
    """The asyncpg connection under ``executor``, in the transaction ``executor`` is in. ``begin=False``: if
    it is in none yet, do not begin one (each statement is then its own transaction)."""
    conn = executor if isinstance(executor, AsyncConnection) else await executor.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if driver.is_closed():
        # Closed under the pool (a Postgres restart): SQLAlchemy invalidates such a connection when its own
        # statement fails on it, but statements sent here bypass it, and the pool would hand it out forever.
        await conn.invalidate()
        raise ConnectionResetError("the database connection was closed (a Postgres restart?); retry on a fresh one")
    adapter: Any = raw.dbapi_connection
    if begin and adapter._transaction is None:  # noqa: SLF001 - SQLAlchemy sends BEGIN lazily, before its first statement
        await adapter._start_transaction()  # noqa: SLF001 - the BEGIN it would send itself
    return driver


class Params:
    """Positional parameters of one statement: ``add`` returns the placeholder, cast to ``sql_type``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, sql_type: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{sql_type}"


def json_text(value: Mapping[str, Any] | Iterable[Any] | None) -> str | None:
    """JSON for a ``jsonb`` column sent as text (the statement casts it)."""
    return None if value is None else _json(value)
