"""The order saga on celery-saga: ``celerysaga_saga.py --sagas N --concurrency C --failure-share F [--json]``.

Celery over the local Redis (broker, and celery-saga's ``RedisSagaBackend`` for saga state); one worker started as
a subprocess (prefork pool, ``PEERS_CELERY_CONCURRENCY`` processes, default 4, prefetch multiplier 1); every step
and compensation task is one local Postgres transaction (psycopg, one connection per worker process).
celery-saga has no completion callback, so the driver reads every in-flight saga's state from Redis in one
round trip every ``POLL_S`` seconds (its own ``SagaResult.get`` polls each saga every 0.5 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import celerysaga_app
import peer_common as common
import redis
from celery_saga.backends import RedisSagaBackend

PEER = "celery-saga"
REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER_CONCURRENCY = int(os.environ.get("PEERS_CELERY_CONCURRENCY", "4"))
POLL_S = 0.02
TERMINAL = {common.COMPLETED, common.COMPENSATED, common.FAILED}


class Poller:
    """Resolves each started saga's future when its state in Redis is terminal."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self.seen: list[str] = []

    def wait(self, saga_id: str) -> asyncio.Future[str]:
        self.waiting[saga_id] = future = asyncio.get_running_loop().create_future()
        self.seen.append(saga_id)
        return future

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            ids = list(self.waiting)
            if not ids:
                continue
            for saga_id, raw in zip(ids, self.client.mget([RedisSagaBackend.PREFIX + i for i in ids]), strict=True):
                status = json.loads(raw)["status"] if raw else None
                if status in TERMINAL:
                    self.waiting.pop(saga_id).set_result(status)


def _start_worker(queue: str, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "PEERS_REDIS_URL": REDIS_URL,
        "PEERS_CELERY_QUEUE": queue,
        "PEERS_APP_DATABASE_URL": database_url,
    }
    command = [sys.executable, "-m", "celery", "-A", "celerysaga_app", "worker", "--pool", "prefork"]
    command += ["--concurrency", str(WORKER_CONCURRENCY), "--prefetch-multiplier", "1", "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"{queue}@%h"]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=Path(__file__).parent, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_for_worker(worker: subprocess.Popen[bytes], deadline_s: float = 60) -> None:
    started = time.monotonic()
    while not celerysaga_app.app.control.ping(timeout=0.5):
        if worker.poll() is not None or time.monotonic() - started > deadline_s:
            raise RuntimeError(f"the celery worker did not come up (exit code {worker.poll()})")


def _clean_redis(client: redis.Redis, queue: str, saga_ids: list[str]) -> None:
    for start in range(0, len(saga_ids), 500):
        client.delete(*(RedisSagaBackend.PREFIX + i for i in saga_ids[start : start + 500]))
    leftovers = list(client.scan_iter(match=f"*{queue}*", count=1000))
    if leftovers:
        client.delete(*leftovers)


async def _measure(args: common.Args, database_url: str, client: redis.Redis) -> dict[str, Any]:
    poller = Poller(client)
    polling = asyncio.create_task(poller.run())

    async def run_one(order: common.Order) -> str:
        return await poller.wait(celerysaga_app.ORDER_SAGA.run(**order.as_dict()).saga_id)

    try:
        return await common.benchmark(
            PEER, args, database_url, run_one, worker=f"prefork x{WORKER_CONCURRENCY}", poll_ms=POLL_S * 1000
        )
    finally:
        polling.cancel()
        _clean_redis(client, celerysaga_app.app.conf.task_default_queue, poller.seen)


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(PEER, argv)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        return common.unavailable(PEER, f"Redis at {REDIS_URL} is not reachable ({exc})", as_json=args.json)
    queue = f"peers-{uuid.uuid4().hex[:8]}"
    with common.fresh_database(PEER) as database_url, tempfile.TemporaryDirectory(prefix="peers-celery-") as tmp:
        celerysaga_app.configure(redis_url=REDIS_URL, queue=queue, database_url=database_url)
        worker = _start_worker(queue, database_url, Path(tmp) / "worker.log")
        try:
            _wait_for_worker(worker)
            report = asyncio.run(_measure(args, database_url, client))
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    return 0 if report["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
