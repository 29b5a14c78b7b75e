"""A step repeated every few milliseconds in the background while a block runs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Self

Interval = float | Callable[[], float]  # seconds, or asked again before every wait


class Periodic:
    """Runs ``step`` every ``interval_s`` while the ``async with`` block runs. Stopping waits for the step under
    way instead of cancelling it: a cancelled asyncpg query leaves its connection busy for the next one."""

    def __init__(self, step: Callable[[], Awaitable[None]], interval_s: Interval, *, name: str) -> None:
        self._step = step
        self._interval_s = interval_s
        self._name = name
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=self._name)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            await self._step()
            interval_s = self._interval_s() if callable(self._interval_s) else self._interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, interval_s - (time.monotonic() - began)))
