"""A fetch wait that stretches while a consumer gets nothing, and snaps back when records come.

A broker that never answers a waiting fetch early (the embedded one) needs a short wait, 10 ms, or every hop
waits for the next poll; but then each idle consumer asks it a hundred times a second, and an idle stack uses
half a core (bench/RESULTS.md, step 9). With ``SAGALINE_FETCH_IDLE_MAX_WAIT_MS`` set, a consumer that has had no
records for ``SAGALINE_FETCH_IDLE_AFTER_MS`` asks with that longer wait instead; its first batch brings it back
to ``SAGALINE_FETCH_MAX_WAIT_MS``. The price: the first record after a quiet spell waits up to the idle wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator.settings import Settings


class IdleFetchWait:
    """Sets an aiokafka consumer's fetch wait from whether its recent waits for records brought any."""

    def __init__(
        self, *, busy_ms: int, idle_ms: int, after_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if idle_ms < busy_ms:
            raise ValueError(f"the idle fetch wait ({idle_ms} ms) is shorter than the fetch wait ({busy_ms} ms)")
        self.busy_ms, self.idle_ms, self._after_s, self._clock = busy_ms, idle_ms, after_s, clock
        self._last_records = clock()

    @classmethod
    def from_settings(cls, settings: Settings) -> IdleFetchWait | None:
        """None when the setting is off (unset or 0): the wait stays ``fetch_max_wait_ms``."""
        if not settings.fetch_idle_max_wait_ms:
            return None
        return cls(
            busy_ms=settings.fetch_max_wait_ms,
            idle_ms=settings.fetch_idle_max_wait_ms,
            after_s=settings.fetch_idle_after_ms / 1000,
        )

    def wait_ms(self, *, got_records: bool) -> int:
        """The fetch wait for the consumer's next requests."""
        now = self._clock()
        if got_records:
            self._last_records = now
            return self.busy_ms
        return self.idle_ms if now - self._last_records >= self._after_s else self.busy_ms

    def observe(self, consumer: Any, *, got_records: bool) -> None:
        """Called after each wait for records; the consumer's next fetch requests carry the new wait."""
        fetcher = getattr(consumer, "_fetcher", None)  # aiokafka reads it for every fetch request it builds
        if fetcher is not None:
            fetcher._fetch_max_wait_ms = self.wait_ms(got_records=got_records)  # noqa: SLF001 - no public setter
