"""Helpers shared by CLI commands: settings, logging, JSON output, running coroutines."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Coroutine
from datetime import date, datetime
from typing import Any, TypeVar

from orchestrator.settings import Settings

T = TypeVar("T")


def settings() -> Settings:
    return Settings()


def configure_logging(service: str, level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aiokafka", "faststream", "sagaline.faststream", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def print_json(value: object) -> None:
    print(json.dumps(value, default=_default, indent=2, sort_keys=False))
