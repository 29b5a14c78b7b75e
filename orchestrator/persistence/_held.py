"""Where a consumer's batches get their connection: from the pool for each batch, or one kept between them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class BatchConnection:
    """A consumer handles one batch at a time, so with ``keep=True`` it keeps one connection checked out
    between batches: the pool's checkout and checkin cost 0.15-0.25 ms of Python CPU a batch
    (bench/RESULTS.md, step 11). The service host makes one that keeps, hands it to the processor it builds,
    and ``release``s it before it disposes the engine; a processor built without one (tests, tools) checks out
    per batch.

    An exception inside ``use``, or a transaction left open, hands the connection back to the pool (which rolls
    it back, or discards it if it broke), and the next ``use`` checks out another."""

    def __init__(self, engine: AsyncEngine, *, keep: bool = False) -> None:
        self.engine = engine
        self._keep = keep
        self._idle: AsyncConnection | None = None

    @asynccontextmanager
    async def use(self) -> AsyncIterator[AsyncConnection]:
        conn, self._idle = self._idle or await self.engine.connect(), None
        try:
            yield conn
        except BaseException:
            await conn.close()
            raise
        if self._keep and self._idle is None and _clean(conn):
            self._idle = conn
        else:  # the pool's checkin ends what is left open; or a second use ran meanwhile and kept its own
            await conn.close()

    async def release(self) -> None:
        """Hands the kept connection back to the pool; a later ``use`` checks out another."""
        conn, self._idle = self._idle, None
        if conn is not None:
            await conn.close()


def _clean(conn: AsyncConnection) -> bool:
    """In no transaction, SQLAlchemy's or one begun on the driver connection below it (``driver_connection``)."""
    if conn.closed or conn.invalidated or conn.in_transaction():
        return False
    driver: Any = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    return not driver.is_in_transaction()
