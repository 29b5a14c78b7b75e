"""Helpers for integration tests: waiting on conditions (never on sleeps) and reading topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from orchestrator.messaging import read_topic as _read_topic
from orchestrator.settings import Settings

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], *, timeout_s: float = 60, interval_s: float = 0.2) -> T:
    """Retry ``check`` until it returns without AssertionError; re-raise the last failure at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval_s)


async def read_topic(settings: Settings, topic: str) -> list[Any]:
    return await _read_topic(settings.kafka_bootstrap_servers, topic)
