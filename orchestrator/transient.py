"""Transient-fault retries in one place: tenacity strategies for infrastructure errors (DB, broker)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError, UnsupportedVersionError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never, wait_exponential_jitter

log = logging.getLogger(__name__)

T = TypeVar("T")

_PERMANENT_KAFKA = (MessageSizeTooLargeError, RecordTooLargeError, UnsupportedVersionError)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    TimeoutError,
    OperationalError,
    InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    KafkaError,
)


# SQLSTATE classes that a retry outlives: connection exceptions, operator intervention (shutdown, restart),
# insufficient resources, and serialization failures / deadlocks.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P", "53", "40001", "40P01")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig``, else the ``__cause__``, each once."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return chain


def _sqlstate(exc: BaseException) -> str | None:
    for current in _chain(exc):
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def is_transient(exc: BaseException) -> bool:
    """Infrastructure trouble that goes away by itself: lost connections, a restarting server, a busy broker."""
    if isinstance(exc, _PERMANENT_KAFKA):
        return False
    state = _sqlstate(exc)
    if state is not None and state.startswith(_TRANSIENT_SQLSTATE_PREFIXES):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, Exception):
        return is_transient(exc.orig) or "connection" in str(exc.orig).lower()
    # The driver adapter's own errors (raised where our statements bypass SQLAlchemy) carry asyncpg's as cause.
    return any(isinstance(current, TRANSIENT_ERRORS) for current in _chain(exc))


def _log_attempt(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("transient fault (attempt %d): %r; retrying", state.attempt_number, exc)


async def backoff_forever(fn: Callable[[], Awaitable[T]], *, what: str, max_wait_s: float = 5.0) -> T:
    """Run ``fn`` until it succeeds, retrying transient faults with jittered exponential backoff.
    A service waits out a database or broker outage instead of crashing; other errors propagate."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(multiplier=0.05, max=max_wait_s),
        stop=stop_never,
        before_sleep=_log_attempt,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    msg = f"{what}: retrying stopped without a result"  # pragma: no cover - stop_never
    raise RuntimeError(msg)
