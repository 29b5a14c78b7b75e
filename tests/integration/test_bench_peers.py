"""bench/peers/: the peers run the same plan as Sagaline's catalog, and ``compare.py`` gives a correct row for each.

One tiny comparison (20 sagas, 4 in flight) through the real ``compare.py``: it creates the peers' virtualenv
(.sagaline/peers-venv, from PyPI) on first use, runs DBOS, Temporal and celery-saga against the local Postgres
(and Redis), and Sagaline's bench/saga_throughput.py. No timed assertions: figures only have to be positive.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from orchestrator.launch._catalog import plan_orders

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "bench" / "peers"


def _load_peer_plan() -> ModuleType:
    """bench/peers is not a package (its scripts run in their own virtualenv); its plan is standard library only."""
    spec = importlib.util.spec_from_file_location("peer_plan", PEERS / "peer_plan.py")
    assert spec is not None
    assert spec.loader is not None
    module = sys.modules.setdefault("peer_plan", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


peer_plan = _load_peer_plan()

SAGAS, CONCURRENCY, FAILURE_SHARE = 20, 4, 0.1


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("failure_share", [0.0, 0.1, 0.2, 0.25, 0.5])
def test_the_peers_plan_is_the_demo_catalogs(failure_share: float) -> None:
    ours = plan_orders(300, failure_share=failure_share, run_id="r")
    theirs = peer_plan.plan_orders(300, failure_share, "r")
    for planned, order in zip(ours, theirs, strict=True):
        (item,) = planned.command.items
        assert order.scenario == planned.scenario.value
        assert order.order_id == planned.command.order_id
        assert (order.customer_id, order.sku, order.quantity) == (planned.command.customer_id, item.sku, item.quantity)
        assert (order.unit_price_cents, order.country) == (item.unit_price_cents, planned.command.address.country)


@pytest.fixture(scope="module")
def comparison() -> dict[str, Any]:
    if not _reachable(5432):
        pytest.skip("no Postgres on 127.0.0.1:5432: the peers run their participants there")
    command = [sys.executable, str(PEERS / "compare.py"), "--sagas", str(SAGAS), "--concurrency", str(CONCURRENCY)]
    command += ["--failure-share", str(FAILURE_SHARE), "--json"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=420, check=False)
    assert done.stdout.strip(), done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("peer", ["sagaline", "dbos", "temporal", "celery-saga"])
def test_compare_gives_a_correct_row(comparison: dict[str, Any], peer: str) -> None:
    if peer == "celery-saga" and not _reachable(6379):
        pytest.skip("no Redis on 127.0.0.1:6379: celery-saga's broker and saga state live there")
    assert (comparison["sagas"], comparison["concurrency"]) == (SAGAS, CONCURRENCY)
    row = next(r for r in comparison["rows"] if r["peer"] == peer)
    assert "unavailable" not in row, row
    design = Counter(order.expected for order in peer_plan.plan_orders(SAGAS, FAILURE_SHARE, "t"))
    assert row["outcomes"]["completed"] == design["completed"], row
    assert row["outcomes"]["compensated"] == design["compensated"] > 0, row
    assert row["outcomes"]["failed"] == 0, row
    assert row["correct"] is True, row
    assert row["sagas_per_s"] > 0
    assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p99"] <= row["latency_ms"]["max"]
    if peer != "sagaline":
        assert comparison["ratios"][peer]["sagas_per_s"] > 0
