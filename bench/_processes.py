"""CPU seconds and peak memory of the processes under test (psutil; peak RSS from Linux's VmHWM)."""

from __future__ import annotations

from pathlib import Path

import psutil


def cpu_seconds(pid: int | None, *, children: bool = True) -> float:
    """User + system CPU of the process and, unless ``children`` is false, of its live children and the children
    it has reaped (Postgres backends)."""
    if pid is None:
        return 0.0
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        if not children:
            return float(times.user + times.system)
        total = times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue
            total += child_times.user + child_times.system
    except psutil.Error:
        return 0.0
    return float(total)


def machine_cpu_s() -> tuple[float, float]:
    """The whole machine's busy and stolen CPU seconds since boot, summed over its CPUs. Steal is time the
    hypervisor gave this VM's CPUs to someone else; busy is every process's and the kernel's work."""
    times = psutil.cpu_times()
    fields = times._asdict()
    busy = sum(fields.get(name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    return float(busy), float(fields.get("steal", 0.0))


def peak_rss_mb(pid: int | None) -> float:
    """The process's high-water resident set size (``VmHWM``); its current RSS where /proc has no peak."""
    if pid is None:
        return 0.0
    status = Path(f"/proc/{pid}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except (OSError, psutil.Error):
        return 0.0
