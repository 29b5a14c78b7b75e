"""A participant's batch where handlers write (through the session or on the driver connection, ``tx.sql``) and
then refuse or raise, over real Postgres: what a refusing or broken handler wrote leaves with it, the other
handlers' effects stay, every command gets its reply, and no handler runs twice for the same command's failure.
A batch is handled as new first and claimed at the end: a duplicate in it undoes that and the batch runs again
claiming first, so a duplicate's effects never stay."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Column, MetaData, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import CreateOrder, OrderCreated, OrderRejected, Reply
from orchestrator.messaging import Written
from participants.kit import CommandProcessor, LocalTransaction, Participant
from tests.support.kit import create_order, kit_processor

pytestmark = pytest.mark.integration


def _participant(schema: str) -> tuple[Participant, Table, Counter[str]]:
    metadata = MetaData(schema=schema)
    note = Table("note", metadata, Column("order_id", Text))  # one row per handler run that committed
    kit = Participant("kit", metadata=metadata)
    calls: Counter[str] = Counter()

    @kit.handles(CreateOrder)
    async def create(tx: LocalTransaction, cmd: CreateOrder) -> Reply:
        calls[cmd.order_id] += 1
        # Written before deciding, through the session or, for "sql-" orders, on the driver connection.
        if cmd.order_id.startswith("sql-"):
            await tx.sql.execute(f"INSERT INTO {schema}.note (order_id) VALUES ($1)", cmd.order_id)
        else:
            await tx.connection.execute(note.insert().values(order_id=cmd.order_id))
        if cmd.order_id.endswith("refuse"):
            return OrderRejected(order_id=cmd.order_id, reason="refused after writing")
        if cmd.order_id.endswith("boom"):
            raise RuntimeError("broke after writing")
        return OrderCreated(order_id=cmd.order_id)

    return kit, note, calls


@dataclass
class KitRun:
    kit: Participant
    note: Table
    calls: Counter[str]
    db: AsyncEngine
    processor: CommandProcessor
    published: list[Written]


@pytest.fixture
async def run(database_url: str) -> AsyncIterator[KitRun]:
    """A participant of the test's own (a fresh schema) whose replies are collected instead of published."""
    kit, note, calls = _participant(f"kit_{uuid.uuid4().hex[:8]}")
    published: list[Written] = []
    async with kit_processor(database_url, kit, published) as (db, processor):
        yield KitRun(kit=kit, note=note, calls=calls, db=db, processor=processor, published=published)


async def test_refusing_and_raising_handlers_leave_nothing_and_the_rest_of_the_batch_stays(run: KitRun) -> None:
    ids = ["a", "b-refuse", "c", "d-boom", "e", "sql-f", "sql-g-refuse"]
    outcomes = await run.processor.process_batch([create_order(order_id, n) for n, order_id in enumerate(ids)])

    assert outcomes == [None] * len(ids)
    async with run.db.connect() as conn:
        noted = set((await conn.execute(select(run.note.c.order_id))).scalars())
        inbox = (await conn.execute(select(func.count()).select_from(run.kit.inbox))).scalar_one()
    assert noted == {"a", "c", "e", "sql-f"}, "the refusals' and the crash's writes were rolled back"
    assert run.calls["b-refuse"] == run.calls["d-boom"] == 1, "a failed handler is not run again"
    assert inbox == 6, "the crash's retryable failure gives its claim back; the others are stored"
    (written,) = run.published
    replies = {r.headers["sagaline-saga-id"]: r.payload["type"] for r in written.records}
    assert replies == {
        "a": "OrderCreated",
        "b-refuse": "OrderRejected",
        "c": "OrderCreated",
        "d-boom": "CommandFailed",
        "e": "OrderCreated",
        "sql-f": "OrderCreated",
        "sql-g-refuse": "OrderRejected",
    }
    assert len(written.ids) == len(ids)


async def test_a_duplicate_in_a_batch_handled_as_new_leaves_no_second_effect(run: KitRun) -> None:
    first = create_order("a", 0)
    await run.processor.process_batch([first, create_order("b", 1)])
    redelivered = create_order("a", 0, message_id=first.envelope.message_id)
    outcomes = await run.processor.process_batch([redelivered, create_order("c", 2)])
    await run.processor.process_batch([create_order("d", 3)])  # claims first: the batch before met a duplicate
    await run.processor.process_batch([create_order("e", 4)])  # handled as new again

    assert outcomes == [None, None]
    async with run.db.connect() as conn:
        noted = Counter((await conn.execute(select(run.note.c.order_id))).scalars())
    assert noted == Counter("abcde"), "the duplicate's second run was rolled back"
    assert run.calls["a"] == 2, "the duplicate ran once more, in the pass that was undone"

    def reply_ids(written: Written) -> dict[str, str]:
        return {r.headers["sagaline-saga-id"]: r.headers["sagaline-message-id"] for r in written.records}

    assert [sorted(reply_ids(w)) for w in run.published] == [["a", "b"], ["a", "c"], ["d"], ["e"]]
    assert reply_ids(run.published[1])["a"] == reply_ids(run.published[0])["a"], "answered with the stored reply"
