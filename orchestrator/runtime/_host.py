"""Hosting one service process: database, producer, topics, consumer, relay, background loops, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator import telemetry
from orchestrator.messaging import (
    AssignmentWatch,
    BatchProcessor,
    Consumer,
    ConsumerCheck,
    DeadLetters,
    InlinePublisher,
    OutboxRelay,
    Publish,
    ensure_topics,
    guard_topics,
    make_broker,
    make_producer,
    rewind_if_past_end,
    subscribe,
    watch_consumer,
)
from orchestrator.persistence import BatchConnection, asyncpg_dsn, create_engine
from orchestrator.runtime._gc import tune_collector
from orchestrator.settings import Settings
from orchestrator.transient import backoff_forever

log = logging.getLogger(__name__)

# Checks (one a second) that partitions may stay unassigned before rejoining: longer than a rebalance takes.
UNASSIGNED_PATIENCE = 5

BackgroundTasks = Callable[[AsyncEngine], Sequence[Coroutine[Any, Any, None]]]


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """What differs between the orchestrator and a participant."""

    name: str
    outbox: Table
    topics: Sequence[str]
    # Builds the consumer's processor on the host's connection for batches (its engine is ``.engine``).
    make_processor: Callable[[BatchConnection, Publish], BatchProcessor]
    bare_json_topics: frozenset[str] = frozenset()
    background: BackgroundTasks = field(default=lambda _db: ())


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def _consumer_checks(settings: Settings) -> list[ConsumerCheck]:
    """Checked every second: positions past the end of the log (a broker that lost it), and, where asked,
    partitions left unassigned."""
    checks: list[ConsumerCheck] = [rewind_if_past_end]
    if settings.rejoin_unassigned:
        checks.append(AssignmentWatch(patience=UNASSIGNED_PATIENCE).check)
    return checks


async def serve(spec: ServiceSpec, settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT). Offsets are committed only after processing."""
    stop = stop or asyncio.Event()
    _install_signal_handlers(stop)
    telemetry.setup(spec.name, settings)  # OTLP / Prometheus when configured; otherwise nothing at all
    db = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    producer = make_producer(settings)
    await backoff_forever(producer.start, what="producer start")
    await ensure_topics(settings)
    publisher = InlinePublisher(db, spec.outbox, producer)
    relay = OutboxRelay(
        db,
        spec.outbox,
        producer,
        dsn=asyncpg_dsn(settings.database_url),
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
        grace_s=settings.relay_grace_s,
        in_flight=publisher.pending_ids,
    )
    dead_letters = DeadLetters(producer, settings.topics.dlq, spec.name)
    batches = BatchConnection(db, keep=True)
    consumer = Consumer(
        spec.make_processor(batches, publisher.publish),
        dead_letters,
        bare_json_topics=spec.bare_json_topics,
        max_message_bytes=settings.max_message_bytes,
    )
    broker = make_broker(settings)
    subscriber, committer = subscribe(
        broker,
        settings,
        topics=list(spec.topics),
        group=settings.group_id(spec.name),
        consumer=consumer,
    )
    tasks = [
        asyncio.create_task(publisher.run(), name=f"{spec.name}-publish"),
        asyncio.create_task(committer.run(), name=f"{spec.name}-offsets"),
        asyncio.create_task(relay.run(), name=f"{spec.name}-relay"),
        asyncio.create_task(guard_topics(settings, interval_s=settings.topic_check_interval_s), name="topic-guard"),
        asyncio.create_task(watch_consumer(subscriber, _consumer_checks(settings), interval_s=1.0), name="watch"),
    ]
    tasks += [asyncio.create_task(coro) for coro in spec.background(db)]
    tasks += [asyncio.create_task(coro) for coro in telemetry.background_tasks(db, spec.outbox)]
    try:
        await backoff_forever(broker.start, what="consumer start")
        tune_collector()
        log.info("sagaline %s ready", spec.name)
        print(f"sagaline {spec.name} ready", flush=True)  # noqa: T201 - launchers wait for this line
        stop_wait = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stop_wait and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        log.info("sagaline %s stopping", spec.name)
        with contextlib.suppress(Exception):
            await committer.flush()  # a batch still running now is redelivered after a restart
        await broker.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await publisher.drain()
            await relay.publish_once()
        await producer.stop()
        await batches.release()
        await db.dispose()
        telemetry.shutdown()  # flushes the spans still buffered
