"""The testcontainers path: real Apache Kafka and Postgres containers. Runs wherever a Docker engine answers;
skipped, with the reason, where none does (the project's own machines have none)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.launch import Stack, audit, plan_orders, send_orders, wait_terminal
from orchestrator.persistence import create_engine
from tests.support.infra import docker_engine

pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture(scope="module")
def containers() -> Iterator[tuple[str, str]]:
    available, why = docker_engine()
    if not available:
        pytest.skip(f"testcontainers needs a Docker engine and {why}; this test runs wherever Docker exists")
    from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415 - imported only where Docker exists
    from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415

    with PostgresContainer("postgres:16", driver=None) as postgres, KafkaContainer().with_kraft() as kafka:
        yield postgres.get_connection_url(), kafka.get_bootstrap_server()


async def test_sagas_run_over_containerised_kafka_and_postgres(containers: tuple[str, str], tmp_path: Path) -> None:
    database_url, bootstrap = containers
    stack = Stack(
        workdir=tmp_path / "stack",
        database_url=database_url,
        bootstrap_servers=bootstrap,
        topic_prefix=f"tc{uuid.uuid4().hex[:6]}.",
    )
    try:
        await stack.start()
        engine = create_engine(database_url, pool_size=2)
        planned = plan_orders(40, failure_share=0.2)
        await send_orders(stack.settings, [p.command for p in planned])
        ids = [p.command.order_id for p in planned]
        progress = await wait_terminal(engine, ids, timeout_s=180)
        report = await audit(engine, ids)
        await engine.dispose()
    finally:
        stack.stop()
    assert progress.in_flight == 0
    assert report.violations == []
    assert report.by_status == {"completed": 32, "compensated": 8}
