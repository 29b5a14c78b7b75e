"""The working slice end to end: five processes, a real Kafka-protocol broker, real Postgres."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Address, LineItem, PlaceOrder, header_name
from orchestrator.launch import FAILING, Scenario, Stack, audit, plan_orders, send_orders, wait_terminal
from orchestrator.persistence import saga_event, saga_instance, snapshot, state_from_row
from orchestrator.runtime import SAGA_ID_NAMESPACE, rebuild
from orchestrator.sagas import REGISTRY
from tests.integration.helpers import cli_json, eventually, read_topic

pytestmark = pytest.mark.integration

ORDERS = 200


@pytest.fixture(scope="module")
async def batch(stack: Stack, db: AsyncEngine) -> dict[str, Scenario]:
    planned = plan_orders(ORDERS, failure_share=0.2)
    await send_orders(stack.settings, [p.command for p in planned])
    saga_ids = [p.command.order_id for p in planned]
    progress = await wait_terminal(db, saga_ids, timeout_s=240)
    assert progress.in_flight == 0, f"sagas still in flight: {progress.by_status}"
    return {p.command.order_id: p.scenario for p in planned}


async def test_every_saga_reaches_its_designed_terminal_state(batch: dict[str, Scenario], db: AsyncEngine) -> None:
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT id, status FROM sagaline.saga_instance WHERE id = ANY(:ids)"),
                {"ids": list(batch)},
            )
        ).all()
    assert len(rows) == ORDERS
    wrong = {r.id: (r.status, batch[r.id].expected_status) for r in rows if r.status != batch[r.id].expected_status}
    assert wrong == {}
    assert set(batch.values()) >= set(FAILING), "the batch must exercise a failure at every step"


async def test_failures_compensate_completed_steps_in_reverse(batch: dict[str, Scenario], db: AsyncEngine) -> None:
    order = ["create_order", "reserve_inventory", "charge_payment", "schedule_shipment"]
    async with db.connect() as conn:
        for scenario in FAILING:
            saga_id = next(s for s, sc in batch.items() if sc is scenario)
            events = (
                await conn.execute(
                    text("SELECT type, step FROM sagaline.saga_event WHERE saga_id = :id ORDER BY seq"),
                    {"id": saga_id},
                )
            ).all()
            failed = [e.step for e in events if e.type == "step_failed"]
            assert failed == [scenario.failing_step]
            done_before = order[: order.index(scenario.failing_step or "")]
            compensated = [e.step for e in events if e.type == "step_compensated"]
            assert compensated == list(reversed(done_before))


async def test_invariants_hold_across_every_service(batch: dict[str, Scenario], db: AsyncEngine) -> None:
    report = await audit(db, list(batch))
    assert report.sagas == ORDERS
    assert report.violations == []
    assert report.by_status == {"completed": ORDERS * 4 // 5, "compensated": ORDERS // 5}


async def _saga_versions(db: AsyncEngine) -> dict[str, tuple[int, int]]:
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT s.id, s.version, (SELECT count(*) FROM sagaline.saga_event e WHERE e.saga_id = s.id) "
                    "FROM sagaline.saga_instance s",
                ),
            )
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


async def _domain_snapshot(db: AsyncEngine) -> list[tuple[object, ...]]:
    async with db.connect() as conn:
        snapshot: list[tuple[object, ...]] = []
        for sql in (
            "SELECT order_id, status FROM order_svc.orders ORDER BY 1",
            "SELECT order_id, status, amount_cents FROM payment_svc.charge ORDER BY 1",
            "SELECT order_id, status FROM inventory_svc.reservation ORDER BY 1",
            "SELECT sku, on_hand, reserved FROM inventory_svc.product ORDER BY 1",
            "SELECT order_id, status FROM shipment_svc.shipment ORDER BY 1",
        ):
            snapshot += [tuple(r) for r in (await conn.execute(text(sql))).all()]
    return snapshot


async def _outboxes_empty(db: AsyncEngine) -> None:
    async with db.connect() as conn:
        for schema in ("sagaline", "order_svc", "inventory_svc", "payment_svc", "shipment_svc"):
            backlog = (await conn.execute(text(f"SELECT count(*) FROM {schema}.outbox"))).scalar_one()
            assert backlog == 0, f"{schema}.outbox still has {backlog} rows"


async def test_duplicate_command_and_reply_change_nothing(
    batch: dict[str, Scenario],
    stack: Stack,
    db: AsyncEngine,
) -> None:
    settings = stack.settings
    await eventually(lambda: _outboxes_empty(db))
    sagas_before = await _saga_versions(db)
    domain_before = await _domain_snapshot(db)
    async with db.connect() as conn:
        answered_before = (
            await conn.execute(text("SELECT count(*) FROM payment_svc.inbox WHERE reply_topic IS NOT NULL"))
        ).scalar_one()

    charges = [
        r for r in await read_topic(settings, settings.topics.commands("payment")) if _type(r) == "ChargePayment"
    ]
    replies = [r for r in await read_topic(settings, settings.topics.replies) if _type(r) == "PaymentCharged"]
    assert charges
    assert replies
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for record in (*charges[:20], *replies[:20]):
            await producer.send_and_wait(record.topic, value=record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()

    async def redelivered_replies_seen() -> None:
        replayed = [r for r in await read_topic(settings, settings.topics.replies) if _type(r) == "PaymentCharged"]
        assert len(replayed) >= len(replies) + 20, "the payment service answers duplicates from its stored replies"
        await _outboxes_empty(db)

    await eventually(redelivered_replies_seen)
    await eventually(lambda: _assert_equal(_saga_versions(db), sagas_before), timeout_s=15)
    assert await _domain_snapshot(db) == domain_before
    async with db.connect() as conn:
        answered_after = (
            await conn.execute(text("SELECT count(*) FROM payment_svc.inbox WHERE reply_topic IS NOT NULL"))
        ).scalar_one()
    assert answered_after == answered_before
    assert (await audit(db, list(batch))).violations == []


async def _assert_equal(actual: object, expected: object) -> None:
    assert await actual == expected  # type: ignore[misc]


def _type(record: object) -> str | None:
    for key, value in record.headers:  # type: ignore[attr-defined]
        if key == header_name("type"):
            return str(value.decode())
    return None


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
async def test_plain_json_start_without_headers_starts_a_saga(stack: Stack, db: AsyncEngine, keyed: bool) -> None:
    order_id = f"plain-{uuid.uuid4().hex[:8]}"
    body = PlaceOrder(
        order_id=order_id,
        customer_id="cust-1",
        items=(LineItem(sku="SKU-1", quantity=1, unit_price_cents=250),),
        address=Address(line1="1 Plain St", city="Anytown", country="DE"),
    ).model_dump(mode="json", exclude={"saga_id", "schema_version"})
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            stack.settings.topics.start,
            value=json.dumps(body).encode(),
            key=order_id.encode() if keyed else None,
        )
    finally:
        await producer.stop()
    derived = f"kafka:{meta.topic}:{meta.partition}:{meta.offset}"
    saga_id = str(uuid.uuid5(SAGA_ID_NAMESPACE, derived))

    async def completed() -> None:
        async with db.connect() as conn:
            status = (
                await conn.execute(text("SELECT status FROM sagaline.saga_instance WHERE id = :id"), {"id": saga_id})
            ).scalar_one_or_none()
        assert status == "completed"

    await eventually(completed, timeout_s=60)


async def test_every_saga_rebuilds_from_its_history_and_reads_as_of_a_time(
    batch: dict[str, Scenario],
    stack: Stack,
    db: AsyncEngine,
) -> None:
    async with db.connect() as conn:
        rows = (await conn.execute(select(saga_instance).where(saga_instance.c.id.in_(list(batch))))).mappings().all()
        events = (
            (
                await conn.execute(
                    select(saga_event)
                    .where(saga_event.c.saga_id.in_(list(batch)))
                    .order_by(saga_event.c.saga_id, saga_event.c.seq),
                )
            )
            .mappings()
            .all()
        )
    by_saga: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        by_saga[event["saga_id"]].append(event)
    for row in rows:
        rebuilt = rebuild(REGISTRY.get(row["saga_type"], row["definition_version"]), row["id"], by_saga[row["id"]])
        assert rebuilt == snapshot(state_from_row(row)), row["id"]

    compensated = next(s for s, sc in batch.items() if sc is Scenario.UNSERVED)
    assert cli_json(stack.env, "saga", "rebuild", compensated, "--json")["matches"] is True
    began = next(e for e in by_saga[compensated] if e["type"] == "compensation_started")
    then = cli_json(stack.env, "saga", "as-of", compensated, began["at"].isoformat(), "--json")
    assert then["state"]["status"] == "compensating"
    assert then["state"]["to_compensate"] == ["charge_payment", "reserve_inventory", "create_order"]
