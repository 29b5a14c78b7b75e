"""Raw command records for consumer tests over the real broker, and a consumer that records what it handles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from contracts import CreateOrder, Envelope
from orchestrator.messaging import Consumer, DeadLetters, Incoming, Rejected, body_bytes, encode_body, kafka_headers
from orchestrator.settings import Settings


def create_order_record(message_id: str, saga_id: str | None = None) -> dict[str, Any]:
    """``producer.send(topic, **create_order_record(id))``: a CreateOrder as the orchestrator sends it."""
    saga = saga_id or message_id
    envelope = Envelope(message_id=message_id, type="CreateOrder", saga_id=saga, step="create_order")
    return {
        "value": body_bytes(encode_body(CreateOrder(order_id=saga, customer_id="c", amount_cents=1))),
        "key": saga.encode(),
        "headers": kafka_headers(envelope.to_headers()),
    }


def recording_consumer(producer: Any, settings: Settings, service: str, record: Callable[[str], object]) -> Consumer:
    """A service consumer whose processor only hands each message id to ``record``; dead letters go out on
    ``producer``."""

    async def record_ids(batch: Sequence[Incoming]) -> list[Rejected | None]:
        for incoming in batch:
            record(incoming.envelope.message_id)
        return [None] * len(batch)

    return Consumer(
        record_ids,
        DeadLetters(producer, settings.topics.dlq, service),
        bare_json_topics=frozenset(),
        max_message_bytes=settings.max_message_bytes,
    )
