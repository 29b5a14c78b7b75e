"""Where the tests get Postgres and Kafka: explicit URLs from the environment first, then testcontainers
when a Docker engine answers, then the embedded defaults. A reachable but misbehaving broker fails tests."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orchestrator.launch import EmbeddedBroker, EmbeddedPostgres

DATABASE_ENV = "SAGALINE_DATABASE_URL"
KAFKA_ENV = "SAGALINE_KAFKA_BOOTSTRAP_SERVERS"


def docker_engine() -> tuple[bool, str]:
    """Whether a Docker engine answers, and why not when it does not."""
    try:
        import docker  # noqa: PLC0415
    except ImportError:
        return False, "the docker Python package is not installed"
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception as exc:
        return False, f"no Docker engine answers ({type(exc).__name__})"
    return True, "Docker engine answers"


def plan() -> dict[str, str]:
    """Which source each resource will come from (printed in the pytest header)."""
    docker_ok, _why = docker_engine()
    fallback = "testcontainers" if docker_ok else "embedded"
    return {
        "postgres": f"env {DATABASE_ENV}" if os.environ.get(DATABASE_ENV) else fallback,
        "kafka": f"env {KAFKA_ENV}" if os.environ.get(KAFKA_ENV) else fallback,
    }


@dataclass
class Infra:
    server_url: str
    bootstrap_servers: str
    embedded_broker: EmbeddedBroker | None
    embedded_postgres: EmbeddedPostgres | None
    description: dict[str, str]
    _cleanups: list[Any] = field(default_factory=list)

    @property
    def broker_env(self) -> dict[str, str]:
        from orchestrator.launch import embedded_broker_env  # noqa: PLC0415

        return embedded_broker_env() if self.embedded_broker is not None else {}

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty database on the server; dropped afterwards."""
        name = f"sagaline_t_{uuid.uuid4().hex[:10]}"
        admin = create_engine(_sync_url(self.server_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(self.server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                cleanup()


def _sync_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def start_infra(workdir: Path) -> Infra:
    chosen = plan()
    cleanups: list[Any] = []
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    if chosen["postgres"].startswith("env"):
        server_url = os.environ[DATABASE_ENV]
    elif chosen["postgres"] == "testcontainers":
        from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415

        container = PostgresContainer("postgres:16", driver=None).start()
        cleanups.append(container.stop)
        server_url = container.get_connection_url()
    else:
        postgres = EmbeddedPostgres(root=workdir / "postgres")
        server_url = postgres.start()
        cleanups.append(postgres.stop)
    if chosen["kafka"].startswith("env"):
        bootstrap = os.environ[KAFKA_ENV]
    elif chosen["kafka"] == "testcontainers":
        from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415

        kafka = KafkaContainer().with_kraft().start()
        cleanups.append(kafka.stop)
        bootstrap = kafka.get_bootstrap_server()
    else:
        broker = EmbeddedBroker(log_path=workdir / "broker.log")
        broker.start()
        cleanups.append(broker.stop)
        bootstrap = broker.bootstrap_servers
    return Infra(
        server_url=server_url,
        bootstrap_servers=bootstrap,
        embedded_broker=broker,
        embedded_postgres=postgres,
        description=chosen,
        _cleanups=cleanups,
    )
