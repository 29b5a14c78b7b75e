"""The harness's terminal watcher polls less often as more sagas are in flight, so its cost stays bounded."""

from __future__ import annotations

import asyncio

from bench._periodic import Periodic
from bench._watch import POLL_S_PER_SAGA_IN_FLIGHT, TerminalWatcher


def test_the_poll_interval_grows_with_the_sagas_in_flight_above_the_shortest() -> None:
    watcher = TerminalWatcher(conn=None)
    assert watcher.poll_interval_s(0.01) == 0.01
    for i in range(512):
        watcher.watch(f"saga-{i}")
    assert watcher.poll_interval_s(0.01) == 512 * POLL_S_PER_SAGA_IN_FLIGHT
    assert watcher.poll_interval_s(0.5) == 0.5


def test_a_periodic_step_asks_its_interval_before_every_wait() -> None:
    asked: list[int] = []
    steps: list[int] = []

    async def step() -> None:
        steps.append(len(steps))

    def interval() -> float:
        asked.append(len(asked))
        return 0.001

    async def run() -> None:
        async with Periodic(step, interval, name="test"):
            while len(steps) < 5:
                await asyncio.sleep(0.001)

    asyncio.run(run())
    assert len(steps) >= 5
    assert len(asked) >= len(steps) - 1
