"""The benchmark harnesses run end to end at a tiny size and print the JSON other tools read. Proof that they
work, not a measurement: nothing here is timed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sagas import ORDER_FULFILLMENT

pytestmark = pytest.mark.integration

SAGAS, CONCURRENCY, RATE = 40, 8, 10
WORKLOAD_KEYS = {"sagas_per_s", "latency_ms", "outcomes"}
LATENCY_KEYS = {"p50", "p90", "p99", "max"}
OUTCOME_KEYS = {"completed", "compensated", "failed", "unfinished"}
SERVICES = {"orchestrator", "order", "inventory", "payment", "shipment"}


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sgb-"))  # short: Postgres puts its Unix socket under TMPDIR
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_json(root: Path, *command: str, timeout_s: float = 270) -> dict[str, Any]:
    """Run one harness with ``--json``; the timeout only guards against a hang (about 60 s on a quiet machine)."""
    result = subprocess.run(
        [sys.executable, *command, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "TMPDIR": str(root)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def assert_workload(figures: dict[str, Any], runs: int) -> None:
    assert WORKLOAD_KEYS | {"runs"} <= set(figures)
    assert figures["sagas_per_s"] > 0
    assert set(figures["latency_ms"]) == LATENCY_KEYS
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p90"] <= figures["latency_ms"]["max"]
    assert set(figures["outcomes"]) == OUTCOME_KEYS
    assert figures["outcomes"]["unfinished"] == 0
    assert figures["outcomes"]["completed"] + figures["outcomes"]["compensated"] == SAGAS * runs
    assert figures["outcomes"]["compensated"] > 0  # the designed failures happened
    assert len(figures["runs"]) == runs
    for run in figures["runs"]:
        assert set(run) >= WORKLOAD_KEYS
        assert run["postgres_commits"] > 0
        assert run["kafka_messages"] > 0
        assert_legs(run["legs_ms"])
        assert set(run["machine_cpu_pct"]) == {"steal", "other"}
        assert all(0 <= share <= 100 for share in run["machine_cpu_pct"].values())
        assert run["python_loop_ms"]["before"] > 0
        assert run["python_loop_ms"]["after"] > 0


def assert_legs(legs: dict[str, Any]) -> None:
    """Every saga has a start leg and a first step, the steps come in the saga's order, forward then undone in
    reverse; each leg's figures are real durations."""
    assert legs["start"]["count"] == SAGAS
    assert legs["create_order"]["command"]["count"] == legs["create_order"]["reply"]["count"] == SAGAS
    forward = [step.name for step in ORDER_FULFILLMENT.steps]
    assert [step for step in legs if not step.startswith("undo ")] == ["start", *forward]
    undone = [step.removeprefix("undo ") for step in legs if step.startswith("undo ")]
    assert undone
    assert undone == [step for step in reversed(forward) if step in undone]
    for step, figures in legs.items():
        for leg in [figures] if step == "start" else [figures["command"], figures["reply"]]:
            assert 0 <= leg["p50"] <= leg["p99"]


def test_the_saga_harness_runs_every_saga_to_its_end_and_reports_every_figure(root: Path) -> None:
    output_dir = root / "out"
    report = run_json(
        root,
        "bench/saga_throughput.py",
        *("--sagas", str(SAGAS), "--concurrency", str(CONCURRENCY), "--rate", str(RATE)),
        *("--repeats", "1", "--warmup", "8", "--output-dir", str(output_dir)),
    )
    assert report["harness"] == "sagaline"
    assert (report["sagas"], report["concurrency"], report["repeats"]) == (SAGAS, CONCURRENCY, 1)
    assert report["failure_share"] == pytest.approx(0.1)
    assert {"cpus", "python", "platform"} <= set(report["machine"])
    assert isinstance(report["infrastructure"], dict)
    embedded = report["infrastructure"]["kafka"] == "embedded broker (Tansu)"
    # With the embedded broker the open-loop run (the second measured) ran on a fresh broker and fresh services.
    assert report["infrastructure"]["fresh_broker_per_run"] is embedded
    assert_workload(report["closed_loop"], runs=1)
    assert_workload(report["open_loop"], runs=1)
    assert report["open_loop"]["offered_rate_per_s"] == RATE
    assert set(report["services"]) == SERVICES
    for figures in report["services"].values():
        assert figures["cpu_s"] > 0
        assert figures["peak_rss_mb"] > 0
    idle_cpu = report["infrastructure"]["idle_cpu_ms_per_s"]
    assert SERVICES | {"stack"} <= set(idle_cpu)
    assert (
        0
        < idle_cpu["stack"]
        == pytest.approx(sum(ms for name, ms in idle_cpu.items() if name not in {"stack", "harness"}), abs=0.5)
    )
    assert report["postgres_commits_per_s"] > 0
    assert report["kafka_messages_per_s"] > 0
    assert report["outbox_backlog_peak"] >= 0  # 0 when the relays keep up between samples
    assert report["per_saga"]["postgres_commits"] > 0
    assert report["per_saga"]["kafka_messages"] > 0
    assert report["invariants_ok"] is True
    assert json.loads((output_dir / "saga_throughput.json").read_text()) == report
    for plot in ("latency_closed_loop.png", "latency_open_loop.png"):
        assert (output_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_limits_report_postgres_commits_and_kafka_messages_per_second(root: Path) -> None:
    report = run_json(
        root,
        *("-m", "bench.limits", "--connections", "1,4", "--seconds", "0.5"),
        *("--messages", "2000", "--sequential", "50"),
    )
    assert report["harness"] == "limits"
    assert report["postgres"]["settings"]["synchronous_commit"] == "on"
    for kind in ("insert", "update"):
        assert set(report["postgres"]["commits_per_s"][kind]) == {"1", "4"}
        assert all(rate > 0 for rate in report["postgres"]["commits_per_s"][kind].values())
    for figure in ("produce_pipelined_per_s", "produce_one_at_a_time_per_s", "consume_per_s"):
        assert report["kafka"][figure] > 0


def test_the_broker_growth_reports_cpu_per_produce_request_for_every_phase(root: Path) -> None:
    report = run_json(
        root,
        *("bench/broker_growth.py", "--phases", "2", "--requests", "200", "--idle-seconds", "0.5"),
        *("--fetch-wait-ms", "50"),
        timeout_s=120,
    )
    assert report["harness"] == "broker_growth"
    assert report["fetch_wait_ms"] == 50
    assert [phase["batches_held"] for phase in report["phases"]] == [200, 400]
    for phase in report["phases"]:
        assert phase["broker_cpu_ms_per_produce"] > 0
        assert phase["produce_requests_per_s"] > 0
        assert 0 <= phase["idle_fetch_broker_cpu_share"] < 2


def test_the_broker_growth_probes_a_topic_of_its_own_while_the_batches_are_held_elsewhere(root: Path) -> None:
    report = run_json(
        root,
        *("bench/broker_growth.py", "--phases", "2", "--requests", "200", "--idle-seconds", "0.5", "--held-elsewhere"),
        timeout_s=120,
    )
    assert report["held_elsewhere"] is True
    assert [phase["batches_held"] for phase in report["phases"]] == [200, 400]
    assert [phase["followed_topic_batches"] for phase in report["phases"]] == [300, 600]
    for phase in report["phases"]:
        assert phase["broker_cpu_ms_per_probe"] > 0
        assert phase["broker_cpu_ms_per_produce"] > 0
