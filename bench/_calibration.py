"""How fast this machine runs Python at the moment: a fixed loop's time, so that figures taken in different hours
(this kind of VM drifts by half within an hour) can be read against each other."""

from __future__ import annotations

import time
from statistics import median

LOOP = 1_000_000


def python_loop_ms(repeats: int = 3) -> float:
    """The median time of ``sum(i * i for i in range(LOOP))`` (one core, pure Python), in ms."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        sum(i * i for i in range(LOOP))
        times.append((time.perf_counter() - began) * 1000)
    return round(median(times), 1)
