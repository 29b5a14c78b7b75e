"""The orchestrator service: consumes ``saga.start`` and ``saga.replies``, relays its outbox, sweeps deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.messaging import BatchProcessor, Publish
from orchestrator.persistence import BatchConnection, outbox
from orchestrator.runtime._host import ServiceSpec, serve
from orchestrator.runtime._manager import SagaManager
from orchestrator.sagas import load_registry
from orchestrator.settings import Settings
from orchestrator.transient import backoff_forever

SERVICE = "orchestrator"


async def sweep_forever(manager: SagaManager, settings: Settings) -> None:
    while True:
        changed = await backoff_forever(manager.sweep, what="deadline sweep")
        if changed < settings.sweeper_batch_size:
            await asyncio.sleep(settings.sweeper_interval_s)


class _Orchestrator:
    """Builds the manager when the host has a database and publisher, and its sweeper from the same manager."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._manager: SagaManager | None = None

    def processor(self, batches: BatchConnection, publish: Publish) -> BatchProcessor:
        definitions = load_registry(self._settings.saga_definitions)
        self._manager = SagaManager(batches.engine, self._settings, definitions, publish=publish, batches=batches)
        return self._manager.process_batch

    def background(self, _db: AsyncEngine) -> Sequence[Coroutine[Any, Any, None]]:
        assert self._manager is not None, "the host builds the processor first"
        return [sweep_forever(self._manager, self._settings)]


def orchestrator_spec(settings: Settings) -> ServiceSpec:
    parts = _Orchestrator(settings)
    topics = settings.topics
    return ServiceSpec(
        name=SERVICE,
        outbox=outbox,
        topics=[topics.start, topics.replies],
        bare_json_topics=frozenset({topics.start}),
        make_processor=parts.processor,
        background=parts.background,
    )


async def run_orchestrator(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    await serve(orchestrator_spec(settings), settings, stop=stop)
