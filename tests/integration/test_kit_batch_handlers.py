"""A participant's batch handler (``handles_batch``) over real Postgres: consecutive commands of its type are one
call, in order; its refusals are answered as given without undoing the batch; a call that raises undoes the batch,
which runs again with those commands one per call, so only the command that raises fails; a command of another
handler, or a message id the run already holds, ends the run."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Column, MetaData, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import ApproveOrder, CreateOrder, OrderApproved, OrderCreated, OrderRejected, Reply
from orchestrator.messaging import Incoming, Written
from participants.kit import BatchTransaction, CommandProcessor, LocalTransaction, Participant
from tests.support.kit import command_record, create_order, kit_processor

pytestmark = pytest.mark.integration


@dataclass
class BatchKit:
    db: AsyncEngine
    processor: CommandProcessor
    note: Table
    published: list[Written]
    calls: list[list[str]] = field(default_factory=list)  # the order ids of each batch handler call
    approvals: list[str] = field(default_factory=list)

    async def noted(self) -> Counter[str]:
        async with self.db.connect() as conn:
            return Counter((await conn.execute(select(self.note.c.order_id))).scalars())

    def replies(self) -> list[tuple[str, str]]:
        return [(r.headers["sagaline-saga-id"], str(r.payload["type"])) for w in self.published for r in w.records]


@pytest.fixture
async def kit(database_url: str) -> AsyncIterator[BatchKit]:
    schema = f"kitb_{uuid.uuid4().hex[:8]}"
    metadata = MetaData(schema=schema)
    note = Table("note", metadata, Column("order_id", Text))
    participant = Participant("kitb", metadata=metadata)
    published: list[Written] = []
    calls: list[list[str]] = []
    approvals: list[str] = []

    @participant.handles_batch(CreateOrder)
    async def create(tx: BatchTransaction, cmds: Sequence[CreateOrder]) -> list[Reply]:
        calls.append([cmd.order_id for cmd in cmds])
        kept = [cmd.order_id for cmd in cmds if not cmd.order_id.endswith(("refuse", "boom"))]
        await tx.sql.execute(f"INSERT INTO {schema}.note (order_id) SELECT unnest($1::text[])", kept)
        if any(cmd.order_id.endswith("boom") for cmd in cmds):
            raise RuntimeError("broke after writing")
        return [
            OrderRejected(order_id=cmd.order_id, reason="refused")
            if cmd.order_id.endswith("refuse")
            else OrderCreated(order_id=cmd.order_id)
            for cmd in cmds
        ]

    @participant.handles(ApproveOrder)
    async def approve(_tx: LocalTransaction, cmd: ApproveOrder) -> Reply:
        approvals.append(cmd.order_id)
        return OrderApproved(order_id=cmd.order_id)

    async with kit_processor(database_url, participant, published) as (db, processor):
        yield BatchKit(db=db, processor=processor, note=note, published=published, calls=calls, approvals=approvals)


def _batch(*commands: Incoming) -> list[Incoming]:
    return list(commands)


async def test_a_run_is_one_call_in_order_and_its_refusal_is_answered_without_undoing_the_batch(kit: BatchKit) -> None:
    outcomes = await kit.processor.process_batch(
        _batch(*(create_order(o, n) for n, o in enumerate(["a", "b-refuse", "c"])))
    )

    assert outcomes == [None, None, None]
    assert kit.calls == [["a", "b-refuse", "c"]], "one call, and not again: a refusal undoes nothing"
    assert await kit.noted() == Counter({"a": 1, "c": 1})
    assert kit.replies() == [("a", "OrderCreated"), ("b-refuse", "OrderRejected"), ("c", "OrderCreated")]


async def test_a_raising_run_runs_again_one_per_call_and_only_its_raiser_fails(kit: BatchKit) -> None:
    await kit.processor.process_batch(_batch(*(create_order(o, n) for n, o in enumerate(["a", "b-boom", "c"]))))

    # The run raised: one per call. b-boom raised alone too, which undid that pass as a plain handler's raise does
    # (what it wrote must go); the last pass answers it from the remembered failure without calling it again.
    assert kit.calls == [["a", "b-boom", "c"], ["a"], ["b-boom"], ["a"], ["c"]]
    assert await kit.noted() == Counter({"a": 1, "c": 1}), "what the raising call wrote left with the undo"
    assert kit.replies() == [("a", "OrderCreated"), ("b-boom", "CommandFailed"), ("c", "OrderCreated")]


async def test_another_handlers_command_and_a_repeated_message_id_end_a_run(kit: BatchKit) -> None:
    second = create_order("b", 2)
    batch = _batch(
        create_order("a", 0),
        command_record(ApproveOrder(order_id="x"), 1),
        second,
        create_order("b", 2, message_id=second.envelope.message_id),  # a redelivered copy, in b's run
        create_order("c", 3),
    )
    await kit.processor.process_batch(batch)

    assert kit.calls == [["a"], ["b"], ["c"]]
    assert kit.approvals == ["x"]
    assert await kit.noted() == Counter({"a": 1, "b": 1, "c": 1}), "the copy was answered, not handled"
    replies = [r for w in kit.published for r in w.records]
    assert [r.headers["sagaline-saga-id"] for r in replies] == ["a", "x", "b", "b", "c"]
    assert replies[3].headers["sagaline-message-id"] == replies[2].headers["sagaline-message-id"], "the stored reply"
