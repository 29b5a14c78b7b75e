"""Turning the engine's actions into outbox rows: envelope headers, trace context, topics."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from contracts import Envelope, Topics
from orchestrator.definition import Actions
from orchestrator.messaging import OutboxRecord, encode_body


def outbox_records(
    actions: Actions,
    topics: Topics,
    *,
    causation_id: str | None,
    trace_context: Mapping[str, str] | None,
) -> list[OutboxRecord]:
    state = actions.state
    trace = dict(trace_context or {})
    records: list[OutboxRecord] = []
    for command in actions.commands:
        envelope = Envelope(
            message_id=command.message_id,
            type=command.command.type_name(),
            saga_id=state.saga_id,
            saga_type=state.saga_type,
            step=command.step,
            causation_id=causation_id,
            correlation_id=state.saga_id,
            reply_to=topics.replies,
            attempt=command.attempt,
        )
        records.append(
            OutboxRecord(
                topic=topics.commands(command.participant),
                key=state.saga_id,
                headers={**trace, **envelope.to_headers()},
                payload=encode_body(command.command),
            ),
        )
    for event in actions.events:
        envelope = Envelope(
            message_id=str(uuid.uuid4()),
            type=event.type_name(),
            saga_id=state.saga_id,
            saga_type=state.saga_type,
            causation_id=causation_id,
            correlation_id=state.saga_id,
        )
        records.append(
            OutboxRecord(
                topic=topics.events,
                key=state.saga_id,
                headers={**trace, **envelope.to_headers()},
                payload=encode_body(event),
            ),
        )
    return records
