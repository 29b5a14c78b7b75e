"""A whole Sagaline stack on one machine: Postgres and a broker (embedded unless given), schema, catalog,
and the five services as separate processes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.launch._catalog import seed_catalog
from orchestrator.launch._embedded import EmbeddedBroker, EmbeddedPostgres
from orchestrator.launch._processes import SERVICES, Cluster, embedded_broker_env
from orchestrator.messaging import ensure_topics
from orchestrator.persistence import create_engine
from orchestrator.settings import Settings


@dataclass
class Stack:
    workdir: Path
    database_url: str | None = None
    bootstrap_servers: str | None = None
    topic_prefix: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = SERVICES
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    cluster: Cluster | None = None

    async def start_infrastructure(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.database_url is None:
            # Its own temp dir, not under the workdir: the server runs as another user and needs to traverse
            # the path, which pytest resets to 0700 for its temp dirs at every session start.
            self.postgres = EmbeddedPostgres()
            self.database_url = await asyncio.to_thread(self.postgres.start)
        if self.bootstrap_servers is None:
            self.broker = EmbeddedBroker(log_path=self.workdir / "broker.log")
            await asyncio.to_thread(self.broker.start)
            self.bootstrap_servers = self.broker.bootstrap_servers
        from orchestrator.migrate import upgrade  # noqa: PLC0415 - alembic is slow to import

        await asyncio.to_thread(upgrade, self.database_url)
        engine = create_engine(self.database_url, pool_size=1)
        try:
            await seed_catalog(engine)
        finally:
            await engine.dispose()
        await ensure_topics(self.settings)

    @property
    def env(self) -> dict[str, str]:
        assert self.database_url is not None
        assert self.bootstrap_servers is not None
        env = {
            "SAGALINE_DATABASE_URL": self.database_url,
            "SAGALINE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "SAGALINE_TOPIC_PREFIX": self.topic_prefix,
        }
        if self.broker is not None:
            env |= embedded_broker_env()  # a given broker's timings come through extra_env
        return env | self.extra_env

    @property
    def settings(self) -> Settings:
        values: dict[str, Any] = {
            k.removeprefix("SAGALINE_").lower(): v for k, v in self.env.items() if k.startswith("SAGALINE_")
        }
        return Settings(**values)

    async def start_services(self) -> None:
        self.cluster = Cluster(self.env, self.workdir / "logs", self.services)
        await asyncio.to_thread(self.cluster.start)

    async def start(self) -> None:
        await self.start_infrastructure()
        await self.start_services()

    async def renew_broker(self) -> None:
        """The services stopped, the embedded broker restarted empty (same port), its topics created, and the
        services started again on it: what the benchmark does between runs, since this broker's cost per produce
        grows with what it holds (``bench/broker_growth.py``)."""
        assert self.broker is not None, "only an embedded broker can be renewed"
        assert self.cluster is not None, "start the stack first"
        await asyncio.to_thread(self.cluster.stop)
        await asyncio.to_thread(self.broker.restart)
        await ensure_topics(self.settings)
        await asyncio.to_thread(self.cluster.start)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
