"""A standalone outbox relay for one service's schema."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from sqlalchemy import Table

from orchestrator import telemetry
from orchestrator.messaging import OutboxRelay, ensure_topics, make_producer
from orchestrator.persistence import asyncpg_dsn, create_engine, outbox
from orchestrator.settings import Settings
from orchestrator.transient import backoff_forever


def _outbox_of(service: str) -> Table:
    if service == "orchestrator":
        return outbox
    from participants.registry import PARTICIPANTS  # noqa: PLC0415

    if service not in PARTICIPANTS:
        raise SystemExit(f"unknown service {service!r}")
    return PARTICIPANTS[service].outbox


async def run_relay(settings: Settings, service: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    telemetry.setup(service, settings)
    db = create_engine(settings.database_url, pool_size=2)
    producer = make_producer(settings)
    await backoff_forever(producer.start, what="producer start")
    await ensure_topics(settings)
    relay = OutboxRelay(
        db,
        _outbox_of(service),
        producer,
        dsn=asyncpg_dsn(settings.database_url),
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
        grace_s=settings.relay_grace_s,
    )
    task = asyncio.create_task(relay.run())
    print(f"sagaline {service}-relay ready", flush=True)
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await producer.stop()
    await db.dispose()
    telemetry.shutdown()
