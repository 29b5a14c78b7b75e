"""The chaos run: 2,000 orders while services are SIGKILLed and restarted, the broker restarts once and
Postgres restarts once. Afterwards every saga is terminal and every invariant holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.launch import RELAY, SERVICES, Stack, audit, plan_orders, run_with_chaos, wait_terminal
from orchestrator.persistence import create_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ORDERS = int(os.environ.get("SAGALINE_CHAOS_ORDERS", "2000"))


@pytest.mark.timeout(900)
async def test_chaos_loses_no_saga_and_breaks_no_invariant(tmp_path: Path) -> None:
    # Its own embedded stack: the harness restarts the broker and Postgres, which it may only do to its own.
    stack = Stack(
        workdir=tmp_path / "chaos",
        services=(*SERVICES, RELAY),
        extra_env={"SAGALINE_PAYMENT_GLITCH_RATE": "0.05"},
    )
    try:
        await stack.start()
        assert stack.database_url is not None
        engine = create_engine(stack.database_url, pool_size=2)
        planned = plan_orders(ORDERS, failure_share=0.2)
        run = await run_with_chaos(stack, engine, [p.command for p in planned], seed=7, on_event=print)
        ids = [p.command.order_id for p in planned]
        progress = await wait_terminal(engine, ids, timeout_s=420)
        report = await audit(engine, ids)
        await engine.dispose()
    finally:
        stack.stop()
    counts = run.report.as_dict() | {
        "start commands re-sent": run.starts_resent,
        "commands re-sent at their deadline": run.resends_at_deadline,
        "duplicates suppressed": run.duplicates_suppressed,
    }
    print("chaos counts:", counts, "outcome:", progress.by_status)
    assert run.report.kills >= 5
    assert run.report.broker_restarts == 1
    assert run.report.postgres_restarts == 1
    assert progress.in_flight == 0, f"sagas not terminal: {progress.by_status}"
    assert report.violations == []
    expected = {p.command.order_id: p.scenario.expected_status for p in planned}
    assert report.by_status.get("failed", 0) == 0
    assert report.sagas == len(expected)
    assert report.by_status.get("compensated", 0) >= ORDERS // 5, "every designed failure compensates"


@pytest.mark.timeout(900)
def test_demo_chaos_shows_every_saga_terminal_and_the_audit_passing(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "orchestrator.cli", "demo", "--chaos", "--orders", "300", "--json"]
    result = subprocess.run(
        [*command, "--output-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    print("demo --chaos:", {k: summary[k] for k in ("kills", "restarts", "completed", "compensated", "failed")})
    assert summary["kills"] >= 1
    assert summary["restarts"] >= summary["kills"]
    assert summary["chaos"]["broker_restarts"] == 1
    assert summary["chaos"]["postgres_restarts"] == 1
    assert summary["invariants_ok"] is True
    assert summary["failed"] == 0
    assert summary["completed"] + summary["compensated"] == summary["orders"] == 300
