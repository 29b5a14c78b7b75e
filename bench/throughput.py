"""Throughput and latency of the order saga on a local stack: ``python -m bench.throughput --orders 1000``.

The same code path as ``sagaline demo`` (``orchestrator.launch._report``): embedded Postgres and broker unless
``SAGALINE_DATABASE_URL`` / ``SAGALINE_KAFKA_BOOTSTRAP_SERVERS`` are set, the five services as processes,
a batch with a designed share failing at each step, the invariant audit. Exit 1 unless every saga ended
and every invariant holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.launch import Progress, Stack
from orchestrator.launch._report import BatchResult, local_stack, run_batch, save_logs, write_latency_plot


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput", description="Throughput and latency of the order saga."
    )
    parser.add_argument("--orders", type=int, default=1000, help="orders (sagas) in the measured batch")
    parser.add_argument("--failure-share", type=float, default=0.2, help="share designed to fail (default 0.2)")
    parser.add_argument("--rate", type=float, default=None, help="orders/s to send at (default: all at once)")
    parser.add_argument("--warmup", type=int, default=50, help="orders sent first and not measured (0: none)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the batch to end")
    parser.add_argument("--output-dir", type=Path, default=Path(".sagaline/bench"), help="where the plot goes")
    return parser.parse_args(argv)


def _ticker(label: str) -> Callable[[Progress], None]:
    """A one-line progress report on stderr, at most once a second."""
    last = 0.0

    def show(progress: Progress) -> None:
        nonlocal last
        if time.monotonic() - last >= 1 or progress.in_flight == 0:
            last = time.monotonic()
            line = f"\r{label}: {progress.terminal}/{progress.total} ended, {progress.in_flight} in flight "
            print(line, end="\n" if progress.in_flight == 0 else "", file=sys.stderr, flush=True)

    return show


async def _bench(stack: Stack, args: argparse.Namespace) -> BatchResult:
    started = time.monotonic()
    await stack.start()
    print(f"stack up in {time.monotonic() - started:.1f} s ({_infra(stack)})", file=sys.stderr)
    if args.warmup:
        await run_batch(stack, args.warmup, timeout_s=args.timeout, on_progress=_ticker("warm-up"))
    return await run_batch(
        stack,
        args.orders,
        failure_share=args.failure_share,
        timeout_s=args.timeout,
        on_progress=_ticker("measured"),
        rate_per_s=args.rate,
    )


def _infra(stack: Stack) -> str:
    database = "embedded Postgres" if stack.postgres else "Postgres from SAGALINE_DATABASE_URL"
    broker = "embedded broker" if stack.broker else "Kafka from SAGALINE_KAFKA_BOOTSTRAP_SERVERS"
    return f"{database}, {broker}"


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        with local_stack(
            database_url=os.environ.get("SAGALINE_DATABASE_URL"),
            bootstrap_servers=os.environ.get("SAGALINE_KAFKA_BOOTSTRAP_SERVERS"),
            topic_prefix=os.environ.get("SAGALINE_TOPIC_PREFIX", ""),
        ) as stack:
            try:
                result = asyncio.run(_bench(stack, args))
                infra = _infra(stack)
            finally:
                save_logs(stack, args.output_dir / "logs")
    except KeyboardInterrupt:
        print("interrupted; everything the bench started is stopped", file=sys.stderr)
        return 130
    args.output_dir.mkdir(parents=True, exist_ok=True)
    plot = args.output_dir / "latency.png"
    title = f"order_fulfillment: {result.orders} sagas, {result.sagas_per_s:.0f} sagas/s ({infra})"
    why_not = write_latency_plot(result.latencies_ms, plot, title=title, marks=(0.50, 0.95, 0.99))
    report: dict[str, Any] = result.summary() | {
        "warmup": args.warmup,
        "rate_per_s": args.rate,
        "infrastructure": infra,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "latency_plot": None if why_not else str(plot),
    }
    (args.output_dir / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"orders      {result.orders} ({result.completed} completed, {result.compensated} compensated)")
    print(f"sagas/s     {result.sagas_per_s:.1f}  ({result.elapsed_s:.1f} s)")
    print(f"latency ms  p50 {result.p(0.5):.0f}  p95 {result.p(0.95):.0f}  p99 {result.p(0.99):.0f}")
    if result.timeouts or result.off_design:
        print(f"timeouts    {result.timeouts} step deadlines passed; {len(result.off_design)} sagas off design")
    print(f"invariants  {'OK' if result.audit.ok else f'{len(result.audit.violations)} violations'}")
    print(f"wrote       {args.output_dir / 'bench.json'}" + (f", {plot}" if why_not is None else f" ({why_not})"))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
