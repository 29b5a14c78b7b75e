"""``sagaline demo`` end to end, as a user runs it: its JSON, its files, and nothing left behind afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.otlp import OtlpHttpReceiver

pytestmark = pytest.mark.integration

ORDERS = 60
STEPS = ("create_order", "reserve_inventory", "charge_payment", "schedule_shipment")
REQUIRED = ("orders", "completed", "compensated", "failed", "sagas_per_s", "p50_ms", "p99_ms", "invariants_ok")


@dataclass
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    tmp_root: Path
    descendants: dict[int, tuple[float, str]] = field(default_factory=dict)  # pid -> (create time, cmdline)

    @property
    def summary(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.stdout)
        return value


def run_demo(
    root: Path,
    name: str,
    orders: int,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
) -> DemoRun:
    """Run the demo as a subprocess with its own TMPDIR, and note every process it starts while it runs."""
    tmp_root, output_dir = root / f"{name}-tmp", root / f"{name}-out"
    tmp_root.mkdir()
    out, err = root / f"{name}.stdout", root / f"{name}.stderr"
    command = [sys.executable, "-m", "orchestrator.cli", "demo", "--orders", str(orders), "--json"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "--output-dir", str(output_dir)],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "TMPDIR": str(tmp_root), **(env or {})},
        )
        run = DemoRun(0, "", "", output_dir, tmp_root)
        deadline = time.monotonic() + timeout_s
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the demo did not finish in {timeout_s} s:\n{err.read_text()[-3000:]}")
            _note_descendants(process.pid, run.descendants)
            time.sleep(0.1)
    run.returncode, run.stdout, run.stderr = process.returncode, out.read_text(), err.read_text()
    return run


def _note_descendants(pid: int, seen: dict[int, tuple[float, str]]) -> None:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            created, cmdline = child.create_time(), " ".join(child.cmdline())
        except psutil.Error:  # gone already, or a zombie
            continue
        if cmdline or child.pid not in seen:  # a just-forked child may not show its command line yet
            seen[child.pid] = (created, cmdline)


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sgd-"))  # short: Postgres puts its Unix socket under TMPDIR
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def demo(root: Path) -> DemoRun:
    return run_demo(root, "first", ORDERS)


def assert_nothing_left(run: DemoRun) -> None:
    started = " | ".join(cmd for _t, cmd in run.descendants.values())
    assert "tansu" in started, f"the broker was never seen running: {started}"
    assert started.count("orchestrator.cli") >= 5, f"the five services were never seen running: {started}"
    alive = []
    for pid, (created, cmdline) in run.descendants.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid}: {cmdline}")
        except psutil.NoSuchProcess:
            continue
    assert alive == []
    mentions = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = " ".join(process.environ().values()) if process.pid != os.getpid() else ""
        except psutil.Error:
            continue
        if str(run.tmp_root) in cmdline or str(run.tmp_root) in environ:
            mentions.append(f"{process.pid}: {cmdline}")
    assert mentions == [], "processes still use the demo's temporary directory"
    assert [p.name for p in run.tmp_root.iterdir() if p.name.startswith("sagaline-")] == []


def test_demo_prints_its_summary_as_json_and_writes_its_files(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stderr[-3000:]
    summary = demo.summary
    assert set(REQUIRED) <= set(summary)
    assert summary["orders"] == ORDERS
    assert summary["completed"] + summary["compensated"] == ORDERS
    assert summary["compensated"] == 12  # 0.2 designed to fail, 3 at each of the four steps
    assert summary["failed"] == 0
    assert summary["invariants_ok"] is True
    assert summary["violations"] == []
    assert summary["off_design"] == 0
    assert summary["sagas_per_s"] > 0
    assert 0 < summary["p50_ms"] <= summary["p99_ms"]
    assert list(summary["failures_by_step"]) == list(STEPS)
    out = demo.output_dir
    assert (out / "order_fulfillment.mmd").read_text().startswith("stateDiagram-v2")
    path = (out / "compensated_saga.mmd").read_text()
    assert path.startswith("sequenceDiagram")
    assert summary["example_saga_ids"]["compensated"] in path
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "logs" / "orchestrator.log").exists()


def test_demo_leaves_no_process_or_temp_dir_behind(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert_nothing_left(demo)


def test_a_second_run_right_after_works(demo: DemoRun, root: Path) -> None:
    again = run_demo(root, "second", 20)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.summary["completed"] + again.summary["compensated"] == 20
    assert again.summary["invariants_ok"] is True
    assert_nothing_left(again)


def test_a_traced_demo_prints_a_compensated_sagas_trace_id_and_flushes_its_spans(root: Path) -> None:
    receiver = OtlpHttpReceiver()
    try:
        run = run_demo(
            root,
            "traced",
            orders=20,
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
        )
        assert run.returncode == 0, run.stderr[-3000:]
        trace_id = run.summary["compensated_trace_id"]
        spans = receiver.trace(trace_id)
    finally:
        receiver.close()
    services = {s.service for s in spans}
    assert {"sagaline-orchestrator", "sagaline-order"} <= services, "the compensated saga's spans were flushed"
    assert any(s.attributes.get("saga.outcome") == "compensated" for s in spans)
