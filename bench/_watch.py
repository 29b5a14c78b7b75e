"""Noticing that sagas ended: one indexed query for the in-flight ids every few milliseconds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bench import _readonly

_ENDED = (
    "SELECT id, status, extract(epoch FROM updated_at)::float8 AS at FROM sagaline.saga_instance "
    "WHERE id = ANY($1::text[]) AND status IN ('completed', 'compensated', 'failed')"
)


# Each poll looks up every saga in flight by primary key, so its cost grows with them: at 512 in flight, every
# 10 ms, the harness's connection took 6-7 % of a core from the stack it measures. Spacing polls by this much per
# saga in flight bounds the lookups to ~10,000 a second; the delay it adds to the closed loop's next start stays
# ~1 % of a saga's latency, which grows with the sagas in flight too.
POLL_S_PER_SAGA_IN_FLIGHT = 0.0001


@dataclass(frozen=True)
class Ended:
    status: str
    at: float  # epoch seconds of the saga's last state change (saga_instance.updated_at)


class TerminalWatcher:
    """Looks up in ``saga_instance``, by primary key, which of the sagas it watches ended. Latency comes from the
    row's ``updated_at``, so how often it polls only delays the closed loop's next start, never a measurement."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._pending: set[str] = set()
        self._changed = asyncio.Event()
        self.ended: dict[str, Ended] = {}
        self._unread = 0

    def watch(self, saga_id: str) -> None:
        self._pending.add(saga_id)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def poll_interval_s(self, shortest_s: float) -> float:
        return max(shortest_s, len(self._pending) * POLL_S_PER_SAGA_IN_FLIGHT)

    async def poll(self) -> None:
        """One look at the sagas in flight (``Periodic`` runs it every ``poll_interval_s``)."""
        if self._pending:
            for row in await _readonly.fetch(self._conn, _ENDED, list(self._pending)):
                self._pending.discard(row["id"])
                self.ended[row["id"]] = Ended(row["status"], row["at"])
                self._unread += 1
            if self._unread:
                self._changed.set()

    async def next_ended(self, timeout_s: float) -> int:
        """How many sagas ended since the last call; waits for at least one, or ``timeout_s`` (then 0)."""
        if not self._unread:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout_s)
            except TimeoutError:
                return 0
        count, self._unread = self._unread, 0
        return count
