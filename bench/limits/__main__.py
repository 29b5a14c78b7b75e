"""``python -m bench.limits [--json]``: Postgres commits/s and Kafka messages/s on this machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import warnings
from typing import Any, TextIO

from bench._report import machine
from bench._stack import configured_stack, describe, infrastructure
from bench.limits import _kafka, _postgres
from orchestrator.launch import Stack


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="1,8,32", help="Postgres connection counts (default 1,8,32)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per Postgres measurement (3)")
    parser.add_argument("--messages", type=int, default=50_000, help="Kafka messages produced and consumed (50000)")
    parser.add_argument("--sequential", type=int, default=2_000, help="messages produced one at a time (2000)")
    parser.add_argument("--size", type=int, default=400, help="message size in bytes (400: a saga command's size)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (progress on stderr)")
    return parser.parse_args(argv)


async def _measure(stack: Stack, args: argparse.Namespace, progress: TextIO) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    await stack.start_infrastructure()
    assert stack.database_url is not None
    print(f"infrastructure up ({describe(stack)})", file=progress, flush=True)
    connections = [int(c) for c in args.connections.split(",")]
    commits: dict[str, dict[str, float]] = {}
    for kind in _postgres.STATEMENTS:
        for n in connections:
            rate = await _postgres.commits_per_s(stack.database_url, kind, n, args.seconds)
            commits.setdefault(kind, {})[str(n)] = round(rate)
            print(f"  postgres {kind}, {n} connections: {rate:.0f} commits/s", file=progress, flush=True)
    kafka = await _kafka.messages_per_s(
        stack.settings, messages=args.messages, size=args.size, sequential=args.sequential
    )
    print(f"  kafka: {kafka}", file=progress, flush=True)
    return {
        "harness": "limits",
        "infrastructure": infrastructure(stack),
        "machine": machine() | {"load_average_1m": {"start": load_before, "end": os.getloadavg()[0]}},
        "postgres": {
            "settings": await _postgres.server_settings(stack.database_url),
            "seconds": args.seconds,
            "commits_per_s": commits,
            "best_commits_per_s": max(rate for by_n in commits.values() for rate in by_n.values()),
        },
        "kafka": {"message_bytes": args.size, "messages": args.messages, **kafka},
    }


def _render(report: dict[str, Any], out: TextIO) -> None:
    pg, kafka = report["postgres"], report["kafka"]
    settings = pg["settings"]
    print(
        f"\nPostgres {settings['server_version']} (fsync {settings['fsync']}, "
        f"synchronous_commit {settings['synchronous_commit']}): single-row commits/s",
        file=out,
    )
    counts = list(next(iter(pg["commits_per_s"].values())))
    print(f"  {'connections':<14}" + "".join(f"{c:>10}" for c in counts), file=out)
    for kind, by_n in pg["commits_per_s"].items():
        print(f"  {kind:<14}" + "".join(f"{by_n[c]:>10.0f}" for c in counts), file=out)
    print(f"\nKafka ({report['infrastructure']['kafka']}), {kafka['message_bytes']} B messages, aiokafka", file=out)
    print(f"  produce, pipelined        {kafka['produce_pipelined_per_s']:>10.0f} msgs/s", file=out)
    print(f"  produce, one at a time    {kafka['produce_one_at_a_time_per_s']:>10.0f} msgs/s", file=out)
    print(f"  consume                   {kafka['consume_per_s']:>10.0f} msgs/s", file=out)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    progress = sys.stderr if args.json else sys.stdout
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    began = time.monotonic()
    try:
        with configured_stack(services=()) as stack:
            report = asyncio.run(_measure(stack, args, progress))
    except KeyboardInterrupt:
        print("interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    report["elapsed_s"] = round(time.monotonic() - began, 1)
    if args.json:
        print(json.dumps(report))
    else:
        _render(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
