"""What a person watching sees: a progress line a second while a run goes, the table at the end."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO


@contextlib.asynccontextmanager
async def ticking(stream: TextIO, status: Callable[[], str], *, every_s: float = 1.0) -> AsyncIterator[None]:
    """Prints ``status()`` as a line of its own every ``every_s`` while the block runs, and once at its end."""
    began = time.monotonic()

    async def tick() -> None:
        while True:
            await asyncio.sleep(every_s)
            print(f"  {time.monotonic() - began:6.1f} s  {status()}", file=stream, flush=True)

    task = asyncio.create_task(tick(), name="progress")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        print(f"  {time.monotonic() - began:6.1f} s  {status()}", file=stream, flush=True)


def _latency(figures: dict[str, float]) -> str:
    return "  ".join(f"{k} {figures[k]:>7.0f}" for k in ("p50", "p90", "p99", "max"))


def _outcomes(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in outcomes.items() if v or k == "unfinished")


def _legs(legs: dict[str, Any], out: Callable[[str], None]) -> None:
    """Where an open-loop saga's time goes (one run): the start, then each step's command and reply legs."""
    if not legs:
        return
    out("\nopen loop, where a saga's time goes (ms)   command p50 / p99    reply p50 / p99")
    start = legs["start"]
    out(f"  {'start':<38} {start['p50']:>7.0f} / {start['p99']:<7.0f}")
    for step, leg in legs.items():
        if step != "start":
            command, reply = leg["command"], leg["reply"]
            figures = f"{command['p50']:>7.0f} / {command['p99']:<7.0f}    {reply['p50']:>7.0f} / {reply['p99']:<7.0f}"
            out(f"  {step:<38} {figures}")


def render(report: dict[str, Any], stream: TextIO) -> None:
    """The final table (medians over the runs)."""
    closed, opened = report["closed_loop"], report["open_loop"]

    def out(line: str = "") -> None:
        print(line, file=stream)

    runs = f"{report['repeats']} runs each, failure share {report['failure_share']}"
    out(f"\norder saga, {report['sagas']} sagas a run, {runs}")
    out(f"{'workload':<24} {'sagas/s':>8}   latency ms (median of runs)")
    in_flight = f"closed, {report['concurrency']} in flight"
    out(f"{in_flight:<24} {closed['sagas_per_s']:>8.1f}   {_latency(closed['latency_ms'])}")
    offered = f"open, {opened['offered_rate_per_s']:g}/s offered"
    out(f"{offered:<24} {opened['sagas_per_s']:>8.1f}   {_latency(opened['latency_ms'])}")
    out(f"outcomes    closed: {_outcomes(closed['outcomes'])}; open: {_outcomes(opened['outcomes'])}")
    _legs(opened["runs"][len(opened["runs"]) // 2].get("legs_ms", {}), out)
    out("\nper closed-loop run (median)   cpu s   peak RSS MB")
    for name, figures in report["services"].items():
        out(f"  {name:<28} {figures['cpu_s']:>6.1f}   {figures['peak_rss_mb']:>10.0f}")
    for name, cpu in report["infrastructure"].get("cpu_s", {}).items():
        out(f"  {name + ' (infrastructure)':<28} {cpu:>6.1f}")
    per_saga = report["per_saga"]
    out(f"\npostgres    {report['postgres_commits_per_s']:.0f} commits/s, {per_saga['postgres_commits']:.1f} per saga")
    out(f"kafka       {report['kafka_messages_per_s']:.0f} messages/s, {per_saga['kafka_messages']:.1f} per saga")
    out(f"outbox      backlog peak {report['outbox_backlog_peak']} rows (all five services)")
    idle = report["infrastructure"]["idle_cpu_ms_per_s"]
    busiest = ", ".join(f"{name} {ms:.0f}" for name, ms in sorted(idle.items(), key=lambda i: -i[1]) if name != "stack")
    out(f"idle        the stack uses {idle['stack']:.0f} ms of CPU a second doing nothing ({busiest})")
    out(f"invariants  {'OK' if report['invariants_ok'] else 'VIOLATED'}")
    host, load = report["machine"], report["machine"]["load_average_1m"]
    out(f"machine     {host['cpus']} cpus, load average {load['start']:.1f} before, {load['end']:.1f} after")
    for name, workload in (("closed", closed), ("open", opened)):
        pct = [run["machine_cpu_pct"] for run in workload["runs"]]
        shares = ", ".join(f"{share['steal']:.1f} / {share['other']:.1f}" for share in pct)
        out(f"            {name} runs, % of the machine's CPU stolen by the hypervisor / used by others: {shares}")
        loops = ", ".join(
            f"{run['python_loop_ms']['before']:.0f} / {run['python_loop_ms']['after']:.0f}" for run in workload["runs"]
        )
        out(f"            {name} runs, the calibration loop before / after, ms (lower: a faster machine): {loops}")
