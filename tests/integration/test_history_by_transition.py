"""The history is stored one row per transition (``saga_transition``, migration 0007) and read as one row per
event through the ``saga_event`` view, over real Postgres: the migration moves existing events over unchanged
and back, a saga's events are numbered without gaps across its transitions, each transition's state snapshot
rides on its last event, and the stored history stays append-only."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.admin import AdminService
from orchestrator.definition import DefinitionRegistry, SagaStatus
from orchestrator.messaging import Written
from orchestrator.migrate import downgrade, upgrade
from orchestrator.runtime import SagaManager
from orchestrator.sagas import ORDER_FULFILLMENT
from orchestrator.settings import Settings
from tests.support.manager_inputs import order, reply_to_pending, saga_row, start
from tests.support.order_replies import SUCCESS

pytestmark = pytest.mark.integration

_EVENT_COLUMNS = "saga_id, seq, type, from_status, to_status, step, payload, at"


async def _events(db: AsyncEngine, saga_ids: list[str]) -> list[tuple[Any, ...]]:
    async with db.connect() as conn:
        query = text(
            f"SELECT {_EVENT_COLUMNS} FROM sagaline.saga_event WHERE saga_id = ANY(:ids) ORDER BY saga_id, seq"
        )
        return [tuple(row) for row in (await conn.execute(query, {"ids": saga_ids})).all()]


async def test_the_migration_moves_existing_events_over_unchanged_and_back(
    engine: AsyncEngine, database_url: str
) -> None:
    await engine.dispose()
    await asyncio.to_thread(downgrade, database_url, "0006")
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    written = [
        ("m-a", 1, "started", None, "running", None, {"input": {"order_id": "m-a"}}, at),
        ("m-a", 2, "command_sent", None, "running", "create_order", {"state": {"status": "running"}}, at),
        ("m-a", 3, "reply_received", "running", "running", "create_order", {}, at + timedelta(seconds=1)),
        ("m-b", 1, "started", None, "running", None, {"input": {"order_id": "m-b"}}, at),
    ]
    async with engine.begin() as conn:
        for row in written:
            await conn.execute(
                text(
                    f"INSERT INTO sagaline.saga_event ({_EVENT_COLUMNS}) "
                    "VALUES (:i, :s, :t, :f, :to, :st, CAST(:p AS jsonb), :at)"
                ),
                {"i": row[0], "s": row[1], "t": row[2], "f": row[3], "to": row[4], "st": row[5]}
                | {"p": json.dumps(row[6]), "at": row[7]},
            )
    await engine.dispose()  # the migration replaces the table the pooled connections have described
    await asyncio.to_thread(upgrade, database_url)
    assert await _events(engine, ["m-a", "m-b"]) == written
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM sagaline.saga_transition"))).scalar_one()
    assert stored == len(written)  # one transition per event that was there before

    await engine.dispose()
    await asyncio.to_thread(downgrade, database_url, "0006")
    assert await _events(engine, ["m-a", "m-b"]) == written
    await engine.dispose()
    await asyncio.to_thread(upgrade, database_url)


async def test_a_saga_writes_one_row_per_transition_and_reads_as_numbered_events(
    engine: AsyncEngine, database_url: str
) -> None:
    sent: list[Written] = []
    registry = DefinitionRegistry([ORDER_FULFILLMENT])
    manager = SagaManager(engine, Settings(database_url=database_url), registry, publish=sent.append)
    saga_id = f"h-{uuid.uuid4().hex[:8]}"
    assert await manager.process_batch([start(order(saga_id))]) == [None]
    for step in ("create_order", "reserve_inventory", "charge_payment", "schedule_shipment", "approve_order"):
        assert await manager.process_batch([await reply_to_pending(engine, saga_id, SUCCESS[step])]) == [None]
    assert (await saga_row(engine, saga_id)).status == SagaStatus.COMPLETED.value

    async with engine.connect() as conn:
        transitions = (
            await conn.execute(
                text(
                    "SELECT first_seq, last_seq, jsonb_array_length(entries) AS n FROM sagaline.saga_transition "
                    "WHERE saga_id = :i ORDER BY first_seq"
                ),
                {"i": saga_id},
            )
        ).all()
    assert len(transitions) == 6  # the start and five replies
    assert [t.last_seq - t.first_seq + 1 for t in transitions] == [t.n for t in transitions]
    assert all(t.n >= 2 for t in transitions)  # each input, then what it caused
    assert [t.first_seq for t in transitions[1:]] == [t.last_seq + 1 for t in transitions[:-1]]

    events = await _events(engine, [saga_id])
    assert [e[1] for e in events] == list(range(1, len(events) + 1))
    firsts = {t.first_seq for t in transitions}
    lasts = {t.last_seq for t in transitions}
    for _id, seq, kind, from_status, _to, _step, payload, _at in events:
        assert (from_status is not None) == (seq in firsts and kind != "started")
        assert ("state" in payload) == (seq in lasts)
    assert events[-1][2] == "completed"
    assert events[-1][6]["state"]["status"] == SagaStatus.COMPLETED.value

    admin = AdminService(Settings(database_url=database_url), registry)
    try:
        verified = await admin.verify(saga_id)  # a rebuild from the events arrives at the stored state
        halfway = await admin.as_of(saga_id, events[len(events) // 2][7])
    finally:
        await admin.close()
    assert verified.matches, verified.differences
    assert verified.events == len(events)
    assert halfway["state"] is not None
    assert halfway["state"]["status"] == SagaStatus.RUNNING.value


async def test_the_stored_history_refuses_updates_and_deletes(engine: AsyncEngine, database_url: str) -> None:
    sent: list[Written] = []
    manager = SagaManager(
        engine, Settings(database_url=database_url), DefinitionRegistry([ORDER_FULFILLMENT]), publish=sent.append
    )
    saga_id = f"h-{uuid.uuid4().hex[:8]}"
    await manager.process_batch([start(order(saga_id))])
    for statement in (
        "UPDATE sagaline.saga_transition SET to_status = 'failed' WHERE saga_id = :i",
        "DELETE FROM sagaline.saga_transition WHERE saga_id = :i",
        "DELETE FROM sagaline.saga_event WHERE saga_id = :i",
    ):
        with pytest.raises(DBAPIError):
            async with engine.begin() as conn:
                await conn.execute(text(statement), {"i": saga_id})
    assert len(await _events(engine, [saga_id])) >= 2
