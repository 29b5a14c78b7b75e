"""The orchestrator service: consumes ``saga.start`` and ``saga.replies``, relays its outbox, sweeps deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.messaging import OutboxRelay
from orchestrator.persistence import outbox
from orchestrator.runtime._host import ServiceSpec, serve
from orchestrator.runtime._manager import SagaManager
from orchestrator.sagas import DEFINITIONS
from orchestrator.settings import Settings
from orchestrator.transient import backoff_forever

SERVICE = "orchestrator"


async def sweep_forever(manager: SagaManager, settings: Settings) -> None:
    while True:
        changed = await backoff_forever(manager.sweep, what="deadline sweep")
        if changed < settings.sweeper_batch_size:
            await asyncio.sleep(settings.sweeper_interval_s)


def orchestrator_spec(settings: Settings) -> ServiceSpec:
    managers: dict[str, SagaManager] = {}

    def make_processor(db: AsyncEngine, relay: OutboxRelay) -> Any:
        managers["main"] = SagaManager(db, settings, DEFINITIONS, on_commit=relay.wake)
        return managers["main"].process

    def background(_db: AsyncEngine, _relay: OutboxRelay) -> Sequence[Any]:
        return [sweep_forever(managers["main"], settings)]

    topics = settings.topics
    return ServiceSpec(
        name=SERVICE,
        outbox=outbox,
        topics=[topics.start, topics.replies],
        bare_json_topics=frozenset({topics.start}),
        make_processor=make_processor,
        background=background,
    )


async def run_orchestrator(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    await serve(orchestrator_spec(settings), settings, stop=stop)
