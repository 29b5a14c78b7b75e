"""`sagaline demo --chaos`: send the batch through the chaos harness while showing progress."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import PlaceOrder
from orchestrator.launch._chaos import run_with_chaos
from orchestrator.launch._driver import Progress, wait_terminal
from orchestrator.launch._report import Sender
from orchestrator.launch._stack import Stack


def chaos_sender(on_progress: Callable[[Progress], None], on_event: Callable[[str], None]) -> Sender:
    async def send(
        stack: Stack,
        engine: AsyncEngine,
        commands: list[PlaceOrder],
    ) -> tuple[dict[str, datetime], dict[str, Any]]:
        ids = [c.saga_id or c.order_id for c in commands]
        watcher = asyncio.create_task(_watch(engine, ids, on_progress))
        try:
            run = await run_with_chaos(stack, engine, commands, on_event=on_event)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        counts = run.report.as_dict()
        return run.sent_at, {
            "kills": counts["kills"],
            "restarts": counts["restarts"],
            "chaos": counts
            | {
                "start_commands_resent": run.starts_resent,
                "commands_resent_at_deadline": run.resends_at_deadline,
                "duplicates_suppressed": run.duplicates_suppressed,
                "timeline": run.report.timeline,
            },
        }

    return send


async def _watch(engine: AsyncEngine, ids: list[str], on_progress: Callable[[Progress], None]) -> None:
    """Progress while the harness works; database outages (it restarts Postgres) only pause the display."""
    while True:
        with contextlib.suppress(Exception):
            await wait_terminal(engine, ids, timeout_s=0, on_progress=on_progress)
        await asyncio.sleep(0.5)
