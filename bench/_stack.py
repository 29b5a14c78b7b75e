"""The stack a benchmark runs on: embedded Postgres and broker, or the services the environment names."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.launch import SERVICES, Stack
from orchestrator.launch._report import local_stack

DATABASE_ENV, KAFKA_ENV, PREFIX_ENV = (
    "SAGALINE_DATABASE_URL",
    "SAGALINE_KAFKA_BOOTSTRAP_SERVERS",
    "SAGALINE_TOPIC_PREFIX",
)


@contextmanager
def configured_stack(services: tuple[str, ...] = SERVICES) -> Iterator[Stack]:
    """``local_stack`` on the configured Postgres / Kafka (embedded where none is set); everything it started is
    stopped at exit, Ctrl-C and SIGTERM included."""
    with local_stack(
        database_url=os.environ.get(DATABASE_ENV),
        bootstrap_servers=os.environ.get(KAFKA_ENV),
        topic_prefix=os.environ.get(PREFIX_ENV, ""),
        services=services,
    ) as stack:
        yield stack


def infrastructure(stack: Stack, *, fresh_broker: bool = False) -> dict[str, Any]:
    """What the figures were measured on (no URLs: they may carry passwords)."""
    return {
        "postgres": "embedded" if stack.postgres else f"from {DATABASE_ENV}",
        "kafka": "embedded broker (Tansu)" if stack.broker else f"from {KAFKA_ENV}",
        "fresh_broker_per_run": fresh_broker and stack.broker is not None,
        "topic_partitions": stack.settings.topic_partitions,
        "partition_rotation_s": stack.settings.partition_rotation_s,
        "fetch_max_wait_ms": stack.settings.fetch_max_wait_ms,
        "fetch_idle_max_wait_ms": stack.settings.fetch_idle_max_wait_ms,
        "fetch_saturated_wait_ms": stack.settings.fetch_saturated_wait_ms,
    }


def describe(stack: Stack) -> str:
    database = "embedded Postgres" if stack.postgres else f"Postgres from {DATABASE_ENV}"
    broker = "embedded broker" if stack.broker else f"Kafka from {KAFKA_ENV}"
    return f"{database}, {broker}"
