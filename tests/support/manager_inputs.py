"""Inputs for a ``SagaManager`` driven directly (no broker): start commands and replies as decoded records."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Envelope, Message, PlaceOrder, Reply
from orchestrator.messaging import Incoming, RecordRef, body_bytes, decode, encode_body, kafka_headers
from tests.support.saga_run import PLACE_ORDER

_offsets = itertools.count()


def incoming(topic: str, message: Message, envelope: Envelope) -> Incoming:
    record = RecordRef(
        topic=topic,
        partition=0,
        offset=next(_offsets),
        key=(envelope.saga_id or "").encode(),
        value=body_bytes(encode_body(message)),
        headers=tuple(kafka_headers(envelope.to_headers())),
    )
    return decode(record, require_envelope=True)


def start(order: PlaceOrder) -> Incoming:
    envelope = Envelope(message_id=str(uuid.uuid4()), type=order.type_name(), saga_id=order.order_id)
    return incoming("saga.start", order, envelope)


def order(saga_id: str, customer_id: str = "c-1") -> PlaceOrder:
    return PLACE_ORDER.model_copy(update={"order_id": saga_id, "saga_id": saga_id, "customer_id": customer_id})


async def saga_row(db: AsyncEngine, saga_id: str) -> Any:
    async with db.connect() as conn:
        columns = "status, step, pending_command_id, attempt, version"
        query = text(f"SELECT {columns} FROM sagaline.saga_instance WHERE id = :i")
        return (await conn.execute(query, {"i": saga_id})).one()


async def reply_to_pending(db: AsyncEngine, saga_id: str, reply: Reply) -> Incoming:
    """``reply`` to the command the saga's row says it waits for."""
    row = await saga_row(db, saga_id)
    envelope = Envelope(
        message_id=str(uuid.uuid4()),
        type=reply.type_name(),
        saga_id=saga_id,
        causation_id=row.pending_command_id,
        attempt=row.attempt,
    )
    return incoming("saga.replies", reply, envelope)
