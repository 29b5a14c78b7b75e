"""Helpers for integration tests: waiting on conditions (never on sleeps) and reading topics."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from orchestrator.messaging import read_topic as _read_topic
from orchestrator.settings import Settings

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], *, timeout_s: float = 60, interval_s: float = 0.2) -> T:
    """Retry ``check`` until it returns without AssertionError; re-raise the last failure at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval_s)


async def until(condition: Callable[[], object], *, timeout_s: float, interval_s: float = 0.05) -> None:
    """Wait until ``condition()`` is true, looking every ``interval_s``; fail at the timeout."""
    for _ in range(int(timeout_s / interval_s)):
        if condition():
            return
        await asyncio.sleep(interval_s)
    raise AssertionError("timed out")


async def read_topic(settings: Settings, topic: str) -> list[Any]:
    return await _read_topic(settings.kafka_bootstrap_servers, topic)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``sagaline <args>`` in a subprocess with the stack's environment."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_run(env: dict[str, str], *args: str) -> tuple[int, Any]:
    """Run ``sagaline <args>``: its exit code and JSON output."""
    result = cli(env, *args)
    try:
        return result.returncode, json.loads(result.stdout)
    except json.JSONDecodeError:
        message = f"sagaline {' '.join(args)} printed no JSON: {result.stdout!r} {result.stderr!r}"
        raise AssertionError(message) from None


def cli_json(env: dict[str, str], *args: str) -> Any:
    """Run ``sagaline <args>``, which must succeed; its JSON output."""
    code, output = cli_run(env, *args)
    assert code == 0, f"sagaline {' '.join(args)} exited {code}: {output}"
    return output
