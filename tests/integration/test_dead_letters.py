"""Hostile input on every consumed topic lands in the DLQ with a reason; correct traffic keeps flowing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import PARTICIPANTS, Address, Envelope, LineItem, PlaceOrder
from orchestrator.launch import Stack, audit, plan_orders, send_orders, wait_terminal
from orchestrator.messaging import DLQ_HEADER_PREFIX, body_bytes, encode_body, kafka_headers
from tests.integration.helpers import cli_json, eventually, read_topic

pytestmark = pytest.mark.integration


def _order(order_id: str) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id,
        saga_id=order_id,
        customer_id="cust-2",
        items=(LineItem(sku="SKU-2", quantity=1, unit_price_cents=700),),
        address=Address(line1="2 Side St", city="Elsewhere", country="FR"),
    )


def _envelope(type_: str, **extra: Any) -> list[tuple[str, bytes]]:
    env = Envelope(message_id=str(uuid.uuid4()), type=type_, **extra)
    return kafka_headers(env.to_headers())


def hostile_messages(stack: Stack) -> dict[str, tuple[str, bytes, list[tuple[str, bytes]], str]]:
    """marker → (topic, value, headers, expected reason)."""
    topics = stack.settings.topics
    valid = body_bytes(encode_body(_order("valid-shape")))
    command_headers = _envelope("CreateOrder", saga_id="s-1", reply_to=topics.replies)
    cases: dict[str, tuple[str, bytes, list[tuple[str, bytes]], str]] = {}
    consumed = [topics.start, topics.replies, *(topics.commands(p) for p in PARTICIPANTS)]
    for topic in consumed:
        headers = [] if topic == topics.start else command_headers
        short = topic.removeprefix(topics.prefix)
        cases[f"malformed-{short}"] = (topic, b"{not json at all", headers, "undecodable")
        cases[f"truncated-{short}"] = (topic, valid[: len(valid) // 2], headers, "undecodable")
        cases[f"oversized-{short}"] = (
            topic,
            b'{"type":"PlaceOrder","pad":"' + b"x" * 1_200_000 + b'"}',
            headers,
            "oversized",
        )
        cases[f"unknown-type-{short}"] = (topic, b'{"type":"LaunchRocket","target":"moon"}', headers, "unknown-type")
        cases[f"not-an-object-{short}"] = (topic, b"[1, 2, 3]", headers, "schema-invalid")
        cases[f"non-utf8-header-{short}"] = (topic, valid, [("sagaline-message-id", b"\xff\xfe")], "bad-envelope")
    wrong_typed = json.loads(valid)
    wrong_typed["items"] = "three apples"
    cases["wrong-typed-start"] = (topics.start, json.dumps(wrong_typed).encode(), [], "schema-invalid")
    cases["command-without-envelope"] = (
        topics.commands("order"),
        b'{"type":"CancelOrder","order_id":"x"}',
        [],
        "bad-envelope",
    )
    cases["wrong-command-for-service"] = (
        topics.commands("payment"),
        b'{"type":"CancelOrder","order_id":"x"}',
        _envelope("CancelOrder", saga_id="s-2"),
        "unknown-command",
    )
    cases["reply-for-unknown-saga"] = (
        topics.replies,
        b'{"type":"OrderCreated","order_id":"ghost"}',
        _envelope("OrderCreated", saga_id="no-such-saga", causation_id="c-1"),
        "unknown-saga",
    )
    cases["command-on-start-topic"] = (topics.start, b'{"type":"CancelOrder","order_id":"x"}', [], "wrong-topic")
    return cases


async def test_hostile_input_is_dead_lettered_while_traffic_flows(stack: Stack, db: AsyncEngine) -> None:
    settings = stack.settings
    cases = hostile_messages(stack)
    planned = plan_orders(40, failure_share=0.2)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_idempotence=False,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        for marker, (topic, value, headers, _reason) in cases.items():
            await producer.send_and_wait(topic, value=value, key=marker.encode(), headers=headers)
    finally:
        await producer.stop()
    await send_orders(settings, [p.command for p in planned])

    progress = await wait_terminal(db, [p.command.order_id for p in planned], timeout_s=120)
    assert progress.in_flight == 0
    report = await audit(db, [p.command.order_id for p in planned])
    assert report.violations == []
    assert report.by_status == {"completed": 32, "compensated": 8}

    async def all_dead_lettered() -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for record in await read_topic(settings, settings.topics.dlq):
            headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers}
            found[(record.key or b"").decode()] = headers
        missing = set(cases) - set(found)
        assert not missing, f"not dead-lettered: {sorted(missing)}"
        return found

    dead = await eventually(all_dead_lettered, timeout_s=60)
    for marker, (topic, _value, _headers, reason) in cases.items():
        headers = dead[marker]
        assert headers[f"{DLQ_HEADER_PREFIX}reason"] == reason, marker
        assert headers[f"{DLQ_HEADER_PREFIX}source-topic"] == topic
        assert int(headers[f"{DLQ_HEADER_PREFIX}source-offset"]) >= 0
        assert headers[f"{DLQ_HEADER_PREFIX}error"]
    kept = {(r.key or b"").decode(): r.value for r in await read_topic(settings, settings.topics.dlq)}
    for marker, (_topic, value, _headers, reason) in cases.items():
        truncated_from = dead[marker].get(f"{DLQ_HEADER_PREFIX}truncated-from")
        if truncated_from is not None:  # the broker refused it whole: its head is kept, the rest stays at the source
            assert reason == "oversized"
            assert truncated_from == str(len(value))
            assert value.startswith(kept[marker])
        else:
            assert kept[marker] == value, f"{marker}: the DLQ keeps the original bytes"


async def test_replayed_start_command_is_deduplicated(stack: Stack, db: AsyncEngine) -> None:
    settings = stack.settings
    order = _order(f"replay-{uuid.uuid4().hex[:6]}")
    headers = _envelope("PlaceOrder", saga_id=order.saga_id)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(settings.topics.start, value=body_bytes(encode_body(order)), headers=headers)
    finally:
        await producer.stop()
    assert order.saga_id is not None
    await wait_terminal(db, [order.saga_id], timeout_s=60)
    async with db.connect() as conn:
        started = (
            await conn.execute(
                text("SELECT count(*) FROM sagaline.saga_event WHERE saga_id = :id AND type = 'started'"),
                {"id": order.saga_id},
            )
        ).scalar_one()
    assert started == 1


def _cli(stack: Stack, *args: str) -> Any:
    return cli_json(stack.env, *args)


async def test_dlq_cli_lists_and_replays_after_the_cause_is_fixed(stack: Stack, db: AsyncEngine) -> None:
    settings = stack.settings
    order = _order(f"misrouted-{uuid.uuid4().hex[:6]}")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:  # a client publishes a valid start command to the wrong topic
        await producer.send_and_wait(
            settings.topics.commands("payment"),
            value=body_bytes(encode_body(order)),
            key=b"misrouted",
            headers=_envelope("PlaceOrder", saga_id=order.saga_id),
        )
    finally:
        await producer.stop()

    async def listed() -> dict[str, Any]:
        rows = _cli(stack, "dlq", "list", "--json", "--limit", "1000")
        match = [r for r in rows if r["key"] == "misrouted"]
        assert match, "the misrouted command is in the DLQ"
        return dict(match[0])

    entry = await eventually(listed, timeout_s=60)
    assert entry["reason"] == "unknown-command"
    assert entry["source_topic"] == settings.topics.commands("payment")
    replayed = _cli(stack, "dlq", "replay", str(entry["offset"]), "--to", settings.topics.start, "--json")
    assert replayed["replayed_to"] == settings.topics.start
    assert order.saga_id is not None
    progress = await wait_terminal(db, [order.saga_id], timeout_s=60)
    assert progress.by_status == {"completed": 1}
