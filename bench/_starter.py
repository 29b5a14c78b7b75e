"""Sending start commands from one long-lived producer, with acknowledgements checked at the end."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts import PlaceOrder
from orchestrator.launch import send_start
from orchestrator.messaging import make_producer
from orchestrator.settings import Settings


class Starter:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = make_producer(settings)
        self._acks: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        await self._producer.start()

    async def send(self, order: PlaceOrder) -> None:
        """Enqueue one start (it goes out with whatever else is waiting); does not wait for the broker."""
        self._acks.append(await send_start(self._producer, self._settings, order))

    async def confirm(self) -> None:
        """Every start so far acknowledged by the broker (raises the first failure)."""
        acks, self._acks = self._acks, []
        await asyncio.gather(*acks)

    async def stop(self) -> None:
        await self._producer.stop()
