"""One transaction per consumed batch: duplicates, several inputs of one saga and poison records in the middle
of a batch, over the real broker and Postgres. The service is down while the records are produced, so the first
fetch after it starts hands them over together."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Envelope, header_name
from orchestrator.launch import Stack, wait_terminal
from orchestrator.launch._driver import START_ID_NAMESPACE
from orchestrator.messaging import DLQ_HEADER_PREFIX, body_bytes, encode_body, kafka_headers
from tests.integration.helpers import eventually, read_topic
from tests.integration.test_failure_semantics import history, order, service_down

pytestmark = pytest.mark.integration


def _headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    return kafka_headers(envelope.to_headers())


async def _produce(stack: Stack, records: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send(topic, value=value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def _dead_letters(stack: Stack, *markers: str) -> dict[str, dict[str, str]]:
    async def all_there() -> dict[str, dict[str, str]]:
        found = {
            (r.key or b"").decode(): {k: (v or b"").decode() for k, v in r.headers}
            for r in await read_topic(stack.settings, stack.settings.topics.dlq)
        }
        assert set(markers) <= set(found), f"not dead-lettered: {set(markers) - set(found)}"
        return found

    return await eventually(all_there, timeout_s=60)


async def _scalar(db: AsyncEngine, sql: str, **params: Any) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def test_a_start_batch_with_duplicates_and_poison_in_the_middle(stack: Stack, db: AsyncEngine) -> None:
    topics = stack.settings.topics
    first, second = order("batch-a"), order("batch-b")
    start_ids = {o.order_id: str(uuid.uuid5(START_ID_NAMESPACE, o.order_id)) for o in (first, second)}
    ghost_reply_id = str(uuid.uuid4())

    def start(o: Any, message_id: str) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
        envelope = Envelope(message_id=message_id, type="PlaceOrder", saga_id=o.order_id)
        return (topics.start, o.order_id.encode(), body_bytes(encode_body(o)), _headers(envelope))

    ghost = Envelope(message_id=ghost_reply_id, type="OrderCreated", saga_id="batch-ghost", causation_id="c-1")
    with service_down(stack, "orchestrator"):
        await _produce(
            stack,
            [
                start(first, start_ids[first.order_id]),
                start(first, start_ids[first.order_id]),  # the same message again
                (topics.start, b"batch-poison", b"{not json", []),
                start(second, start_ids[second.order_id]),
                start(second, str(uuid.uuid4())),  # the same saga under a new message id
                (topics.replies, b"batch-ghost", b'{"type":"OrderCreated","order_id":"ghost"}', _headers(ghost)),
            ],
        )
    progress = await wait_terminal(db, [first.order_id, second.order_id], timeout_s=120)
    assert progress.by_status == {"completed": 2}
    for o in (first, second):
        assert [e.type for e in await history(db, o.order_id)].count("started") == 1
        assert await _scalar(db, "SELECT count(*) FROM order_svc.orders WHERE order_id = :id", id=o.order_id) == 1
    dead = await _dead_letters(stack, "batch-poison", "batch-ghost")
    assert dead["batch-poison"][f"{DLQ_HEADER_PREFIX}reason"] == "undecodable"
    assert dead["batch-ghost"][f"{DLQ_HEADER_PREFIX}reason"] == "unknown-saga"
    inbox_rows = "SELECT count(*) FROM sagaline.inbox WHERE message_id = :id"
    assert await _scalar(db, inbox_rows, id=ghost_reply_id) == 0, "a rejected input leaves no inbox claim"
    assert await _scalar(db, inbox_rows, id=start_ids[first.order_id]) == 1


async def test_a_command_batch_with_a_resend_and_poison_between(stack: Stack, db: AsyncEngine) -> None:
    topics = stack.settings.topics
    saga = order("batch-c")
    with service_down(stack, "order"):
        await _produce(
            stack,
            [
                (
                    topics.start,
                    saga.order_id.encode(),
                    body_bytes(encode_body(saga)),
                    _headers(Envelope(message_id=str(uuid.uuid4()), type="PlaceOrder", saga_id=saga.order_id)),
                )
            ],
        )

        async def command_sent() -> Any:
            records = [
                r for r in await read_topic(stack.settings, topics.commands("order")) if r.key == saga.order_id.encode()
            ]
            assert records, "CreateOrder not relayed yet"
            return records[0]

        create = await eventually(command_sent, timeout_s=60)
        resend = [(k, b"2" if k == header_name("attempt") else v) for k, v in create.headers]
        await _produce(
            stack,
            [
                (topics.commands("order"), b"batch-poison-command", b"[1, 2, 3]", list(create.headers)),
                (topics.commands("order"), create.key, create.value, resend),  # same message id, attempt 2
            ],
        )
    progress = await wait_terminal(db, [saga.order_id], timeout_s=120)
    assert progress.by_status == {"completed": 1}
    assert await _scalar(db, "SELECT count(*) FROM order_svc.orders WHERE order_id = :id", id=saga.order_id) == 1
    dead = await _dead_letters(stack, "batch-poison-command")
    assert dead["batch-poison-command"][f"{DLQ_HEADER_PREFIX}reason"] == "schema-invalid"

    async def both_answered() -> None:
        replies = [
            {k: (v or b"").decode() for k, v in r.headers}
            for r in await read_topic(stack.settings, topics.replies)
            if r.key == saga.order_id.encode() and dict(r.headers).get(header_name("type")) == b"OrderCreated"
        ]
        assert sorted(r[header_name("attempt")] for r in replies) == ["1", "2"], replies
        assert len({r[header_name("message_id")] for r in replies}) == 1, "a duplicate is answered, not redone"

    await eventually(both_answered, timeout_s=60)
