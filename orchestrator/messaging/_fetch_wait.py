"""A consumer's fetch wait, set from what its waits for records bring and from how busy its machine is.

A broker that never answers a waiting fetch early (the embedded one) needs a short wait, 10 ms, or every hop
waits for the next poll. Two things make a longer one better at times (bench/RESULTS.md, step 12):

* **Idle** (``SAGALINE_FETCH_IDLE_MAX_WAIT_MS``): a consumer that has had no records for
  ``SAGALINE_FETCH_IDLE_AFTER_MS`` asks with that longer wait; its next records bring back the short one. Each
  idle consumer otherwise asks a hundred times a second, and an idle stack used a third of a core on it. The
  price: the first record after a quiet spell waits up to the idle wait.
* **Saturated** (``SAGALINE_FETCH_SATURATED_WAIT_MS``): while this machine's CPUs are nearly all busy, every
  fetch and the batch it brings cost CPU that the other processes wait for; fewer, larger batches then lower
  latency as well as CPU. The machine counts as saturated from 85 % busy over a second until it falls below
  60 %: the longer wait lowers the load, and would otherwise switch itself off at once. But a stack whose load
  at the short wait lies between the two stayed at the longer wait long after the burst that saturated it
  (a 30/s run after a saturating one, step 13), so while saturated every service on the machine goes back to
  the short wait for the first two seconds of each quarter minute of the wall clock, all together: if the
  machine then stays below 85 %, the short wait does not saturate it, and it is no longer saturated."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psutil

from orchestrator.settings import Settings

log = logging.getLogger(__name__)

SATURATED_FROM, SATURATED_UNTIL = 0.85, 0.60
LOOK_EVERY_S = 1.0
TRY_SHORT_EVERY_S, TRY_SHORT_FOR_S = 15, 2
_STATES = {True: "saturated, fetching with the longer wait", False: "no longer saturated, fetching with the short wait"}


def busy_share(before: Any, after: Any) -> float:
    """The share of CPU time the machine spent busy (stolen time included) between two ``psutil.cpu_times()``."""
    fields = [f for f in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal") if hasattr(after, f)]
    total = sum(getattr(after, f) - getattr(before, f) for f in fields)
    idle = sum(getattr(after, f) - getattr(before, f) for f in ("idle", "iowait") if hasattr(after, f))
    return 1.0 - idle / total if total > 0 else 0.0


def _trying_short(wall_s: float) -> int | None:
    """The number of the try at the short wait under way at this wall-clock time, if one is."""
    number, into = divmod(wall_s, TRY_SHORT_EVERY_S)
    return int(number) if into < TRY_SHORT_FOR_S else None


class MachineLoad:
    """Whether this machine's CPUs are saturated, judged at most once a second from the CPU times since the
    last look, with the hysteresis above and the tries at the short wait."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        cpu_times: Callable[[], Any] = psutil.cpu_times,
    ) -> None:
        self._clock, self._wall, self._cpu_times = clock, wall, cpu_times
        self._at, self._wall_at, self._times = clock(), wall(), cpu_times()
        self._saturated = False

    def saturated(self) -> bool:
        """Whether to fetch with the saturated wait now: not during a try at the short wait."""
        now, wall = self._clock(), self._wall()
        try_now = _trying_short(wall)
        if now - self._at >= LOOK_EVERY_S:
            times = self._cpu_times()
            share = busy_share(self._times, times)
            # A look whose whole second lay within one try measured the machine at the short wait.
            tried = try_now is not None and _trying_short(self._wall_at) == try_now
            self._at, self._wall_at, self._times = now, wall, times
            was = self._saturated
            if share >= SATURATED_FROM:
                self._saturated = True
            elif share < SATURATED_UNTIL or tried:
                self._saturated = False
            if self._saturated != was:
                log.info("the machine's CPUs are %.0f %% busy: %s", 100 * share, _STATES[self._saturated])
        return self._saturated and try_now is None


class FetchWait:
    """Sets an aiokafka consumer's fetch wait after each of its waits for records."""

    def __init__(
        self,
        *,
        base_ms: int,
        idle_ms: int = 0,
        idle_after_s: float = 2.0,
        saturated_ms: int = 0,
        machine: MachineLoad | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("idle", idle_ms), ("saturated", saturated_ms)):
            if value and value < base_ms:
                raise ValueError(f"the {name} fetch wait ({value} ms) is shorter than the fetch wait ({base_ms} ms)")
        self.base_ms, self.idle_ms, self.saturated_ms = base_ms, idle_ms, saturated_ms
        self._idle_after_s, self._clock = idle_after_s, clock
        self._machine = machine or (MachineLoad(clock=clock) if saturated_ms else None)
        self._last_records = clock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchWait | None:
        """None when neither longer wait is set: the wait stays ``fetch_max_wait_ms``."""
        idle, saturated = settings.fetch_idle_max_wait_ms, settings.fetch_saturated_wait_ms
        if not idle and not saturated:
            return None
        return cls(
            base_ms=settings.fetch_max_wait_ms,
            idle_ms=idle,
            idle_after_s=settings.fetch_idle_after_ms / 1000,
            saturated_ms=saturated,
        )

    def wait_ms(self, *, got_records: bool) -> int:
        """The fetch wait for the consumer's next requests."""
        now = self._clock()
        if got_records:
            self._last_records = now
        elif self.idle_ms and now - self._last_records >= self._idle_after_s:
            return self.idle_ms
        if self._machine is not None and self._machine.saturated():
            return self.saturated_ms
        return self.base_ms

    def observe(self, consumer: Any, *, got_records: bool) -> None:
        """Called after each wait for records; the consumer's next fetch requests carry the new wait."""
        fetcher = getattr(consumer, "_fetcher", None)  # aiokafka reads it for every fetch request it builds
        if fetcher is not None:
            fetcher._fetch_max_wait_ms = self.wait_ms(got_records=got_records)  # noqa: SLF001 - no public setter
