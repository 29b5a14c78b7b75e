"""Retries, deadlines, cancel, compensation failure and resume, over real processes and a real broker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Address, LineItem, PlaceOrder
from orchestrator.launch import Stack, audit, send_orders, wait_terminal
from tests.integration.helpers import cli_json, cli_run, eventually

pytestmark = pytest.mark.integration


def restart_with(stack: Stack, service: str, **env: str) -> None:
    """Restart one service with extra environment (SIGKILL, then start and wait until ready)."""
    assert stack.cluster is not None
    process = stack.cluster.services[service]
    process.env = {**stack.env, **env}
    process.kill()
    process.start()
    process.wait_ready()


@contextlib.contextmanager
def service_down(stack: Stack, service: str) -> Iterator[None]:
    """SIGKILL one service for the duration of the block; start it again (and wait until ready) afterwards."""
    assert stack.cluster is not None
    process = stack.cluster.services[service]
    process.kill()
    try:
        yield
    finally:
        process.start()
        process.wait_ready()


def order(prefix: str, *, country: str = "DE") -> PlaceOrder:
    order_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return PlaceOrder(
        order_id=order_id,
        saga_id=order_id,
        customer_id="cust-3",
        items=(LineItem(sku="SKU-3", quantity=2, unit_price_cents=1250),),
        address=Address(line1="3 Test Way", city="Testville", country=country),
    )


async def history(db: AsyncEngine, saga_id: str) -> list[Any]:
    async with db.connect() as conn:
        return list(
            (
                await conn.execute(
                    text("SELECT seq, type, step, payload FROM sagaline.saga_event WHERE saga_id = :id ORDER BY seq"),
                    {"id": saga_id},
                )
            ).all(),
        )


async def saga_row(db: AsyncEngine, saga_id: str) -> Any:
    async with db.connect() as conn:
        return (
            await conn.execute(text("SELECT * FROM sagaline.saga_instance WHERE id = :id"), {"id": saga_id})
        ).first()


async def start_and_wait_at(stack: Stack, db: AsyncEngine, placed: PlaceOrder, step: str) -> None:
    """Send ``placed`` and wait until its saga runs and waits at ``step`` (its participant is down, say)."""

    async def waiting() -> None:
        row = await saga_row(db, placed.order_id)
        assert row is not None
        assert (row.status, row.step) == ("running", step)

    await send_orders(stack.settings, [placed])
    await eventually(waiting, timeout_s=30)


async def test_retryable_payment_failures_are_retried_with_backoff(stack: Stack, db: AsyncEngine) -> None:
    restart_with(stack, "payment", SAGALINE_PAYMENT_GLITCH_RATE="0.4", SAGALINE_PAYMENT_GLITCH_SEED="11")
    try:
        orders = [order("glitch") for _ in range(30)]
        await send_orders(stack.settings, orders)
        ids = [o.order_id for o in orders]
        progress = await wait_terminal(db, ids, timeout_s=120)
        assert progress.in_flight == 0
        report = await audit(db, ids)
        assert report.violations == []
        retried = 0
        for saga_id in ids:
            events = await history(db, saga_id)
            retries = [e for e in events if e.type == "retry_scheduled"]
            resends = [e.payload["attempt"] for e in events if e.type == "command_sent" and e.step == "charge_payment"]
            assert resends == list(range(1, len(resends) + 1)), "each retry is the next attempt"
            assert len(resends) == len(retries) + 1
            assert all(e.payload["delay_s"] > 0 for e in retries), "retries wait out a backoff, scheduled by deadline"
            retried += bool(retries)
        assert retried > 0
    finally:
        restart_with(stack, "payment")


async def test_a_lost_command_is_resent_at_its_deadline_and_applied_once(stack: Stack, db: AsyncEngine) -> None:
    placed = order("deadline")

    async def stuck_at_shipment_then_timed_out() -> None:
        types = [(e.type, e.step) for e in await history(db, placed.order_id)]
        assert ("timed_out", "schedule_shipment") in types

    with service_down(stack, "shipment"):
        await send_orders(stack.settings, [placed])
        await eventually(stuck_at_shipment_then_timed_out, timeout_s=60)
    progress = await wait_terminal(db, [placed.order_id], timeout_s=60)
    assert progress.by_status == {"completed": 1}
    sent = [e.payload for e in await history(db, placed.order_id) if e.type == "command_sent"]
    shipment_ids = {p["message_id"] for p in sent if p["command"] == "ScheduleShipment"}
    assert len(shipment_ids) == 1, "the resend reuses the message id"
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT count(*) FROM shipment_svc.shipment WHERE order_id = :id"),
                {"id": placed.order_id},
            )
        ).scalar_one()
    assert rows == 1
    assert (await audit(db, [placed.order_id])).violations == []


async def test_cancel_compensates_a_running_saga_including_the_step_in_flight(stack: Stack, db: AsyncEngine) -> None:
    placed = order("cancel")
    with service_down(stack, "payment"):
        await start_and_wait_at(stack, db, placed, "charge_payment")
        result = cli_json(stack.env, "saga", "cancel", placed.order_id, "--json", "--reason", "customer asked")
        assert (result["saga_id"], result["status"], result["changed"]) == (placed.order_id, "compensating", True)
        assert result["reason"] == "customer asked"
        assert result["actor"].startswith("cli:")
    progress = await wait_terminal(db, [placed.order_id], timeout_s=60)
    assert progress.by_status == {"compensated": 1}
    compensated = [e.step for e in await history(db, placed.order_id) if e.type == "step_compensated"]
    assert compensated == ["charge_payment", "reserve_inventory", "create_order"]
    assert (await audit(db, [placed.order_id])).violations == []
    code, again = cli_run(stack.env, "saga", "cancel", placed.order_id, "--json")
    assert code == 3
    assert again["changed"] is False
    assert "only a running saga can be cancelled" in again["error"]


async def test_failing_compensation_moves_to_failed_and_resume_finishes_it(stack: Stack, db: AsyncEngine) -> None:
    restart_with(stack, "payment", SAGALINE_PAYMENT_REFUNDS_DOWN="true")
    placed = order("refund-outage", country="AQ")  # shipment refuses AQ, so payment must be refunded
    try:
        await send_orders(stack.settings, [placed])
        progress = await wait_terminal(db, [placed.order_id], timeout_s=90)
        assert progress.by_status == {"failed": 1}
        row = await saga_row(db, placed.order_id)
        assert "refund gateway unavailable" in row.failure_reason
        listed = cli_json(stack.env, "saga", "list", "--status", "failed", "--json")
        assert placed.order_id in {r["id"] for r in listed}
    finally:
        restart_with(stack, "payment")
    resumed = cli_json(stack.env, "saga", "resume", placed.order_id, "--json")
    assert (resumed["saga_id"], resumed["status"], resumed["changed"]) == (placed.order_id, "compensating", True)
    progress = await wait_terminal(db, [placed.order_id], timeout_s=60)
    assert progress.by_status == {"compensated": 1}
    compensated = [e.step for e in await history(db, placed.order_id) if e.type == "step_compensated"]
    assert compensated == ["charge_payment", "reserve_inventory", "create_order"]
    assert (await audit(db, [placed.order_id])).violations == []
