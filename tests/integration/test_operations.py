"""Operating sagas from the CLI over the real stack: list, show, history, as-of, why, retry, cancel,
compensate, resume refusals, verify, diagram. Each verb changes state only when it applies."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Envelope
from orchestrator.launch import Stack, audit, send_orders, wait_terminal
from orchestrator.messaging import kafka_headers, make_producer
from tests.integration.helpers import cli, cli_json, cli_run, eventually
from tests.integration.test_failure_semantics import history, order, saga_row, service_down, start_and_wait_at

pytestmark = pytest.mark.integration


async def charges_of(db: AsyncEngine, order_id: str) -> list[Any]:
    async with db.connect() as conn:
        return list(
            (
                await conn.execute(
                    text("SELECT status, amount_cents FROM payment_svc.charge WHERE order_id = :id"), {"id": order_id}
                )
            ).all(),
        )


@pytest.fixture(scope="module")
async def finished(stack: Stack, db: AsyncEngine) -> dict[str, str]:
    """Three sagas that ended: two completed, one compensated (shipment refuses AQ)."""
    placed = {"done-a": order("ops-done"), "done-b": order("ops-done"), "undone": order("ops-aq", country="AQ")}
    await send_orders(stack.settings, list(placed.values()))
    ids = [o.order_id for o in placed.values()]
    progress = await wait_terminal(db, ids, timeout_s=90)
    assert progress.in_flight == 0
    return {name: o.order_id for name, o in placed.items()}


async def test_list_filters_and_pages(stack: Stack, finished: dict[str, str]) -> None:
    completed = cli_json(stack.env, "saga", "list", "--status", "completed", "--type", "order_fulfillment", "--json")
    assert {finished["done-a"], finished["done-b"]} <= {r["id"] for r in completed}
    assert all(r["status"] == "completed" and r["saga_type"] == "order_fulfillment" for r in completed)
    compensated = cli_json(stack.env, "saga", "list", "--status", "compensated", "--json")
    assert finished["undone"] in {r["id"] for r in compensated}
    assert cli_json(stack.env, "saga", "list", "--older-than", "1d", "--json") == []
    assert cli_json(stack.env, "saga", "list", "--step", "no-such-step", "--json") == []

    everything = {r["id"] for r in cli_json(stack.env, "saga", "list", "--limit", "1000", "--json")}
    paged: list[str] = []
    cursor: str | None = None
    for _ in range(len(everything)):
        rows, cursor = _page(
            stack, ["saga", "list", "--limit", "2", "--json", *(["--after", cursor] if cursor else [])]
        )
        paged += [r["id"] for r in rows]
        if cursor is None:
            break
    assert sorted(paged) == sorted(everything), "pages cover every saga once"

    code, bad = cli_run(stack.env, "saga", "list", "--after", "not-a-cursor", "--json")
    assert code == 2
    assert "cursor" in bad["error"]


def _page(stack: Stack, args: list[str]) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``saga list --json``, and the next page's cursor (printed on stderr in --json mode)."""
    result = cli(stack.env, *args)
    assert result.returncode == 0, result.stderr
    marker = "next page: --after "
    cursor = next((line.removeprefix(marker) for line in result.stderr.splitlines() if line.startswith(marker)), None)
    return json.loads(result.stdout), cursor


async def test_show_history_and_as_of(stack: Stack, db: AsyncEngine, finished: dict[str, str]) -> None:
    saga_id = finished["undone"]
    shown = cli_json(stack.env, "saga", "show", saga_id, "--json")
    saga = shown["saga"]
    assert (saga["status"], saga["step"], saga["definition_version"]) == ("compensated", None, 1)
    assert saga["data"]["input"]["order_id"] == saga_id
    assert "AQ" in saga["last_error"] or "not served" in saga["last_error"]
    events = cli_json(stack.env, "saga", "history", saga_id, "--json")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events == shown["history"]
    began = next(e for e in events if e["type"] == "compensation_started")
    then = cli_json(stack.env, "saga", "show", saga_id, "--as-of", began["at"], "--json")
    assert then["state"]["status"] == "compensating"
    before = cli_json(stack.env, "saga", "show", saga_id, "--as-of", "2000-01-01T00:00:00Z", "--json")
    assert before["state"] is None
    code, missing = cli_run(stack.env, "saga", "show", "no-such-saga", "--json")
    assert code == 1
    assert "no saga" in missing["error"]


async def test_refused_verbs_change_nothing(stack: Stack, db: AsyncEngine, finished: dict[str, str]) -> None:
    saga_id = finished["done-a"]
    before_events = await history(db, saga_id)
    before_row = await saga_row(db, saga_id)
    for verb, words in [
        ("cancel", "only a running saga can be cancelled"),
        ("retry", "only a running or compensating saga has a step to retry"),
        ("resume", "only a failed saga can be resumed"),
    ]:
        code, refused = cli_run(stack.env, "saga", verb, saga_id, "--json")
        assert code == 3, verb
        assert words in refused["error"]
        assert (refused["status"], refused["changed"]) == ("completed", False)
    code, refused = cli_run(stack.env, "saga", "compensate", finished["undone"], "--json")
    assert code == 3
    assert "only a running or completed saga can be compensated" in refused["error"]
    assert await history(db, saga_id) == before_events
    assert await saga_row(db, saga_id) == before_row


async def test_compensate_a_completed_saga_undoes_every_step(
    stack: Stack, db: AsyncEngine, finished: dict[str, str]
) -> None:
    saga_id = finished["done-b"]
    result = cli_json(
        stack.env, "saga", "compensate", saga_id, "--reason", "fraud confirmed", "--actor", "ops-anna", "--json"
    )
    assert (result["status"], result["changed"], result["actor"]) == ("compensating", True, "ops-anna")
    progress = await wait_terminal(db, [saga_id], timeout_s=60)
    assert progress.by_status == {"compensated": 1}
    events = await history(db, saga_id)
    request = next(e for e in events if e.type == "compensate_requested")
    assert request.payload["actor"] == "ops-anna"
    assert request.payload["reason"] == "fraud confirmed"
    undone = [e.step for e in events if e.type == "step_compensated"]
    assert undone == ["schedule_shipment", "charge_payment", "reserve_inventory", "create_order"]
    assert (await audit(db, [saga_id])).violations == []
    assert [c.status for c in await charges_of(db, saga_id)] == ["refunded"]


async def test_retry_resends_the_same_command_and_why_explains_the_wait(stack: Stack, db: AsyncEngine) -> None:
    placed = order("ops-retry")
    with service_down(stack, "payment"):
        await start_and_wait_at(stack, db, placed, "charge_payment")
        why = cli_json(stack.env, "saga", "why", placed.order_id, "--json")
        assert why["status"] == "running"
        assert "payment service" in why["summary"]
        assert "ChargePayment" in why["summary"]
        assert "attempt 1 of 6" in why["summary"]
        assert any("deadline" in line for line in why["details"])
        assert why["waiting_since"] is not None
        assert why["dead_letters"] == []
        assert any("saga retry" in s for s in why["suggestions"])
        retried = cli_json(stack.env, "saga", "retry", placed.order_id, "--reason", "payment restarted", "--json")
        assert (retried["status"], retried["step"], retried["changed"]) == ("running", "charge_payment", True)
    progress = await wait_terminal(db, [placed.order_id], timeout_s=60)
    assert progress.by_status == {"completed": 1}
    events = await history(db, placed.order_id)
    request = next(e for e in events if e.type == "retry_requested")
    assert request.payload["reason"] == "payment restarted"
    assert request.payload["actor"].startswith("cli:")
    sent = [e.payload for e in events if e.type == "command_sent" and e.step == "charge_payment"]
    assert [p["attempt"] for p in sent] == [1, 2]
    assert len({p["message_id"] for p in sent}) == 1, "a retry re-sends the same message id"
    assert [c.status for c in await charges_of(db, placed.order_id)] == ["charged"], "charged once"
    done = cli_json(stack.env, "saga", "why", placed.order_id, "--no-dlq", "--json")
    assert done["moving"] is False
    assert done["summary"].startswith("completed")


async def test_why_names_the_dead_letters_that_concern_a_saga(stack: Stack, finished: dict[str, str]) -> None:
    saga_id = finished["done-a"]
    envelope = Envelope(message_id=str(uuid.uuid4()), type="PaymentCharged", saga_id=saga_id)
    producer = make_producer(stack.settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            stack.settings.topics.replies,
            value=b"{garbled",
            key=saga_id.encode(),
            headers=kafka_headers(envelope.to_headers()),
        )
    finally:
        await producer.stop()

    async def dead_lettered() -> dict[str, Any]:
        why = cli_json(stack.env, "saga", "why", saga_id, "--json")
        assert [d["reason"] for d in why["dead_letters"]] == ["undecodable"]
        return why

    why = await eventually(dead_lettered, timeout_s=60, interval_s=1)
    assert why["dead_letters"][0]["saga_id"] == saga_id
    assert any("1 dead-lettered message(s) concern this saga" in line for line in why["details"])
    assert any("sagaline dlq replay" in line for line in why["suggestions"])


async def test_verify_rebuilds_every_saga_from_history(stack: Stack, finished: dict[str, str]) -> None:
    one = cli_json(stack.env, "saga", "verify", finished["undone"], "--json")
    assert one == {"checked": 1, "ok": True, "divergent": []}
    report = cli_json(stack.env, "saga", "verify", "--all", "--json")
    assert report["ok"] is True
    assert report["checked"] >= len(finished)


async def test_diagram_highlights_the_path_a_saga_took(stack: Stack, finished: dict[str, str], tmp_path: Path) -> None:
    mermaid = cli(stack.env, "saga", "diagram", "order_fulfillment", "--saga", finished["undone"])
    assert mermaid.returncode == 0, mermaid.stderr
    lines = mermaid.stdout.splitlines()
    assert lines[0] == "stateDiagram-v2"
    path = next(line for line in lines if line.strip().startswith("%% path:"))
    assert "schedule_shipment → undo_charge_payment" in path
    assert path.endswith("Compensated")
    assert "    class Compensated current" in lines
    assert any(line.endswith("✔ #1") and line.strip().startswith("[*] --> create_order") for line in lines)
    page = tmp_path / "path.html"
    written = cli(
        stack.env,
        "saga",
        "diagram",
        "order_fulfillment",
        "--saga",
        finished["undone"],
        "--format",
        "html",
        "--output",
        str(page),
    )
    assert written.returncode == 0, written.stderr
    assert "<pre class='mermaid'>" in page.read_text()
    assert "class Compensated current" in page.read_text()
    wrong = cli(stack.env, "saga", "diagram", "no_such_saga", "--saga", finished["undone"])
    assert wrong.returncode == 2
    assert "is a order_fulfillment, not a no_such_saga" in wrong.stderr
