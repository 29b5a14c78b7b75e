"""The two workloads. Closed loop: keep ``concurrency`` sagas in flight, start one as soon as one ends, until
``sagas`` have been started and all have ended. Open loop: start sagas at a fixed offered rate, whatever the
system does, then wait for all to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice

from bench._starter import Starter
from bench._watch import Ended, TerminalWatcher
from contracts import PlaceOrder

CLOSED, OPEN = "closed_loop", "open_loop"


@dataclass
class RunRecord:
    workload: str
    sagas: int
    sent_at: dict[str, float] = field(default_factory=dict)  # saga id -> epoch seconds the start was sent/due
    ended: dict[str, Ended] = field(default_factory=dict)
    sending_s: float = 0.0  # how long sending every start took

    @property
    def latencies_ms(self) -> list[float]:
        return sorted((e.at - self.sent_at[saga_id]) * 1000 for saga_id, e in self.ended.items())

    @property
    def elapsed_s(self) -> float:
        """First start sent to the last saga's last state change."""
        if not self.ended or not self.sent_at:
            return 0.0
        return max(e.at for e in self.ended.values()) - min(self.sent_at.values())

    @property
    def sagas_per_s(self) -> float:
        return len(self.ended) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def outcomes(self) -> dict[str, int]:
        counts = {"completed": 0, "compensated": 0, "failed": 0}
        for e in self.ended.values():
            counts[e.status] = counts.get(e.status, 0) + 1
        return counts | {"unfinished": self.sagas - len(self.ended)}


def _saga_id(order: PlaceOrder) -> str:
    return order.saga_id or order.order_id


async def _start(starter: Starter, watcher: TerminalWatcher, record: RunRecord, order: PlaceOrder, at: float) -> None:
    record.sent_at[_saga_id(order)] = at
    await starter.send(order)
    watcher.watch(_saga_id(order))


async def closed_loop(
    starter: Starter,
    watcher: TerminalWatcher,
    orders: Sequence[PlaceOrder],
    record: RunRecord,
    *,
    concurrency: int,
    timeout_s: float,
) -> None:
    """Fills ``record`` as it goes (the progress line reads it); stops early when no saga ends for ``timeout_s``."""
    waiting = iter(orders)
    began = time.monotonic()
    for order in list(islice(waiting, concurrency)):
        await _start(starter, watcher, record, order, time.time())
    while watcher.in_flight:
        ended = await watcher.next_ended(timeout_s)
        if not ended:
            break
        for order in list(islice(waiting, ended)):
            await _start(starter, watcher, record, order, time.time())
        if len(record.sent_at) == len(orders) and not record.sending_s:
            record.sending_s = time.monotonic() - began
    record.ended = dict(watcher.ended)
    await starter.confirm()


async def open_loop(
    starter: Starter,
    watcher: TerminalWatcher,
    orders: Sequence[PlaceOrder],
    record: RunRecord,
    *,
    rate_per_s: float,
    timeout_s: float,
) -> None:
    """Start ``i`` is due at ``i / rate_per_s``; its latency counts from when it was due, so a sender that falls
    behind shows up in the figures instead of hiding (no coordinated omission)."""
    began_wall, began = time.time(), time.monotonic()
    for i, order in enumerate(orders):
        delay = began + i / rate_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await _start(starter, watcher, record, order, began_wall + i / rate_per_s)
    record.sending_s = time.monotonic() - began
    while watcher.in_flight and await watcher.next_ended(timeout_s):
        pass
    record.ended = dict(watcher.ended)
    await starter.confirm()
