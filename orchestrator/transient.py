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


def is_transient(exc: BaseException) -> bool:
    """Infrastructure trouble that goes away by itself: lost connections, a restarting server, a busy broker."""
    if isinstance(exc, _PERMANENT_KAFKA):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, Exception):
        return is_transient(exc.orig) or "connection" in str(exc.orig).lower()
    return isinstance(exc, TRANSIENT_ERRORS)


def _log_attempt(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("transient fault (attempt %d): %r; retrying", state.attempt_number, exc)


async def backoff_forever(fn: Callable[[], Awaitable[T]], *, what: str, max_wait_s: float = 5.0) -> T:
    """Run ``fn`` until it succeeds, retrying transient faults with jittered exponential backoff.
    A service waits out a database or broker outage instead of crashing; other errors propagate."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(initial=0.05, max=max_wait_s),
        stop=stop_never,
        before_sleep=_log_attempt,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    msg = f"{what}: retrying stopped without a result"  # pragma: no cover - stop_never
    raise RuntimeError(msg)
