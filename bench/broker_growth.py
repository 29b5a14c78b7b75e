"""``python bench/broker_growth.py [--partitions N] [--phases K] [--requests R] [--held-elsewhere] [--json]``: how
the embedded broker's CPU per produce request and per idle fetch grows with the batches it holds.

It starts the embedded broker alone, creates one topic, and in each phase sends ``R`` one-record produce
requests (each waits for its acknowledgement, as a service's publisher does) while a consumer follows at the end
of the log; then it measures the broker's CPU while that consumer polls an idle log for a few seconds. With
``--held-elsewhere`` the phases' requests go to a second topic that nobody reads, and each phase ends with
``PROBES`` requests to the followed topic, which holds only those: what a produce and its fetch cost on a topic of
its own while the broker holds more and more elsewhere. Apache Kafka's costs stay flat; this broker's do not
(``docs/design.md``, "The embedded broker")."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

if __package__ in {None, ""}:  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.launch import EmbeddedBroker

TOPIC, ELSEWHERE = "growth", "growth-elsewhere"
PROBES = 300


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/broker_growth.py", description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the topic (1)")
    parser.add_argument("--phases", type=int, default=4, help="phases of produce requests (4)")
    parser.add_argument("--requests", type=int, default=5000, help="one-record produce requests per phase (5000)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle polling measured per phase (3)")
    parser.add_argument(
        "--fetch-wait-ms", type=int, default=10, help="the consumer's fetch wait (10, the embedded stack's setting)"
    )
    parser.add_argument(
        "--held-elsewhere",
        action="store_true",
        help=f"the phases' batches go to another topic; {PROBES} probes per phase measure the followed one",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (progress on stderr)")
    return parser.parse_args(argv)


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class _Follower:
    """Consumes at the end of the log, as a service does; ``reached`` waits until it has seen ``count`` records."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._seen = 0
        self._progress = asyncio.Event()

    async def run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=10)
            self._seen += sum(len(records) for records in batches.values())
            self._progress.set()

    async def reached(self, count: int) -> None:
        while self._seen < count:
            self._progress.clear()
            await self._progress.wait()


async def _phases(bootstrap: str, broker: psutil.Process, args: argparse.Namespace) -> list[dict[str, Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, args.partitions, 1), NewTopic(ELSEWHERE, args.partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, enable_idempotence=False)
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id="growth",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=args.fetch_wait_ms,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
    )
    await producer.start()
    await consumer.start()
    follow = _Follower(consumer)
    follower = asyncio.create_task(follow.run())
    phases: list[dict[str, Any]] = []
    try:
        await asyncio.sleep(2)  # the group join
        sent = followed = 0
        for phase in range(1, args.phases + 1):
            started, cpu_before = time.monotonic(), _cpu_s(broker)
            for _ in range(args.requests):
                await (
                    await producer.send(ELSEWHERE if args.held_elsewhere else TOPIC, b"x" * 400, key=str(sent).encode())
                )
                sent += 1
            if not args.held_elsewhere:
                followed = sent
            await follow.reached(followed)
            produce_cpu, elapsed = _cpu_s(broker) - cpu_before, time.monotonic() - started
            probe: dict[str, Any] = {}
            if args.held_elsewhere:
                probe_before = _cpu_s(broker)
                for _ in range(PROBES):
                    await (await producer.send(TOPIC, b"x" * 400, key=str(followed).encode()))
                    followed += 1
                    await follow.reached(followed)
                probe = {
                    "broker_cpu_ms_per_probe": round(1000 * (_cpu_s(broker) - probe_before) / PROBES, 3),
                    "followed_topic_batches": followed,
                }
            idle_before = _cpu_s(broker)
            await asyncio.sleep(args.idle_seconds)
            idle_share = (_cpu_s(broker) - idle_before) / args.idle_seconds
            phases.append(
                {
                    "batches_held": sent,
                    "broker_cpu_ms_per_produce": round(1000 * produce_cpu / args.requests, 3),
                    "produce_requests_per_s": round(args.requests / elapsed),
                    "idle_fetch_broker_cpu_share": round(idle_share, 3),
                    **probe,
                }
            )
            probed = f", {probe['broker_cpu_ms_per_probe']} ms per probe and its fetch" if probe else ""
            print(
                f"  phase {phase}: {sent} batches held, {phases[-1]['broker_cpu_ms_per_produce']} ms broker CPU per "
                f"produce{probed}, idle polling {100 * idle_share:.1f} % of a core",
                file=sys.stderr,
                flush=True,
            )
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await consumer.stop()
        await producer.stop()
    return phases


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    broker = EmbeddedBroker()
    broker.start()
    try:
        assert broker.pid is not None
        print(f"embedded broker up, {args.partitions} partition(s)", file=sys.stderr, flush=True)
        phases = asyncio.run(_phases(broker.bootstrap_servers, psutil.Process(broker.pid), args))
    finally:
        broker.stop()
    result = {
        "harness": "broker_growth",
        "partitions": args.partitions,
        "fetch_wait_ms": args.fetch_wait_ms,
        "held_elsewhere": args.held_elsewhere,
        "phases": phases,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for p in phases:
            probe = f"  {p['broker_cpu_ms_per_probe']:>7.3f} ms CPU/probe" if "broker_cpu_ms_per_probe" in p else ""
            print(
                f"{p['batches_held']:>8} batches held  {p['broker_cpu_ms_per_produce']:>7.3f} ms CPU/produce  "
                f"{p['produce_requests_per_s']:>6} produce/s  idle fetch {100 * p['idle_fetch_broker_cpu_share']:.1f} %"
                f"{probe}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
