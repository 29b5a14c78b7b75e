"""Shared fixtures: the infrastructure (env → testcontainers → embedded) and per-module stacks."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.launch import Stack
from orchestrator.migrate import upgrade
from orchestrator.persistence import create_engine
from tests.support.infra import Infra, docker_engine, plan, start_infra


def pytest_report_header() -> list[str]:
    chosen = plan()
    _ok, why = docker_engine()
    return [f"sagaline infrastructure: postgres from {chosen['postgres']}, kafka from {chosen['kafka']} ({why})"]


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    workdir = Path(tempfile.mkdtemp(prefix="sagaline-tests-"))
    started = start_infra(workdir)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def database_url(infra: Infra) -> Iterator[str]:
    with infra.fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the module's own database, migrated to head (a module may define its own ``engine``)."""
    await asyncio.to_thread(upgrade, database_url)
    db = create_engine(database_url, pool_size=2)
    yield db
    await db.dispose()


@pytest.fixture(scope="module")
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture(scope="module")
async def stack(
    infra: Infra, database_url: str, topic_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """All five services as separate processes over the real broker and a fresh database."""
    running = Stack(
        workdir=tmp_path_factory.mktemp("stack"),
        database_url=database_url,
        bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        extra_env={**infra.broker_env, "SAGALINE_LOG_LEVEL": "INFO"},
    )
    try:
        await running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    """An engine on the stack's database, for tests that look at what the services wrote."""
    assert stack.database_url is not None
    engine = create_engine(stack.database_url, pool_size=2)
    yield engine
    await engine.dispose()
