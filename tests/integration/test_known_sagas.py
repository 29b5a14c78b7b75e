"""An orchestrator keeps the saga states it wrote and skips reading back rows nobody else changed, over real
Postgres: a row another writer changed, or a saga purged and started again under the same id, is read afresh.
A batch of replies to kept sagas is written without row locks; when what it assumed is not so (a message already
claimed, a row changed, a saga already started) nothing of it is written and it is handled again under locks."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.definition import DefinitionRegistry, OperatorVerb, SagaStatus
from orchestrator.messaging import Incoming, Written
from orchestrator.persistence._bulk import ClaimedAndLocked, claim_and_lock
from orchestrator.persistence._known import KnownSaga, KnownSagas, RowVersion
from orchestrator.runtime import SagaManager
from orchestrator.sagas import ORDER_FULFILLMENT
from orchestrator.settings import Settings
from tests.support.manager_inputs import incoming, order, reply_to_pending, saga_row, start
from tests.support.order_replies import SUCCESS

pytestmark = pytest.mark.integration


def _manager(db: AsyncEngine, database_url: str, sent: list[Written]) -> SagaManager:
    """One orchestrator; what it would publish is collected in ``sent``."""
    return SagaManager(
        db, Settings(database_url=database_url), DefinitionRegistry([ORDER_FULFILLMENT]), publish=sent.append
    )


def _manager_sending(db: AsyncEngine, database_url: str) -> tuple[SagaManager, list[Written]]:
    sent: list[Written] = []
    return _manager(db, database_url, sent), sent


def _last_command(sent: list[Written]) -> dict[str, Any]:
    return dict(sent[-1].records[-1].payload)


async def _history(db: AsyncEngine, saga_id: str) -> list[int]:
    async with db.connect() as conn:
        query = text("SELECT seq FROM sagaline.saga_event WHERE saga_id = :i ORDER BY seq")
        return [row.seq for row in (await conn.execute(query, {"i": saga_id})).all()]


@pytest.fixture
def locked_batches(monkeypatch: pytest.MonkeyPatch) -> list[Collection[str]]:
    """The saga ids of every batch the orchestrators handle under row locks (the rest went without)."""
    calls: list[Collection[str]] = []

    async def spy(conn: Any, consumer: str, message_ids: Any, saga_ids: Collection[str], known: Any = None) -> Any:
        calls.append(saga_ids)
        result: ClaimedAndLocked = await claim_and_lock(conn, consumer, message_ids, saga_ids, known)
        return result

    monkeypatch.setattr("orchestrator.runtime._manager.claim_and_lock", spy)
    return calls


async def test_a_saga_run_by_one_orchestrator_reads_its_row_only_once(
    engine: AsyncEngine, database_url: str, locked_batches: list[Collection[str]]
) -> None:
    sent: list[Written] = []
    manager = _manager(engine, database_url, sent)
    saga_id = f"known-{uuid.uuid4().hex[:8]}"
    assert await manager.process_batch([start(order(saga_id))]) == [None]
    kept = manager._known.get(saga_id)
    assert kept is not None
    assert kept.row.version == (await saga_row(engine, saga_id)).version
    for step in ("create_order", "reserve_inventory", "charge_payment", "schedule_shipment"):
        assert await manager.process_batch([await reply_to_pending(engine, saga_id, SUCCESS[step])]) == [None]
        kept = manager._known.get(saga_id)
        assert kept is not None
        assert kept.row.version == (await saga_row(engine, saga_id)).version
        assert kept.state.completed_steps[-1] == step
        seqs = await _history(engine, saga_id)
        assert seqs == list(range(1, len(seqs) + 1))
        assert kept.row.last_seq == seqs[-1]
    assert await manager.process_batch([await reply_to_pending(engine, saga_id, SUCCESS["approve_order"])]) == [None]
    assert (await saga_row(engine, saga_id)).status == SagaStatus.COMPLETED.value
    assert manager._known.get(saga_id) is None
    assert locked_batches == [], "every batch was written without row locks"
    seqs = await _history(engine, saga_id)
    assert seqs == list(range(1, len(seqs) + 1))


async def test_a_row_another_orchestrator_changed_is_read_again(
    engine: AsyncEngine, database_url: str, locked_batches: list[Collection[str]]
) -> None:
    (a, sent_a), (b, _) = _manager_sending(engine, database_url), _manager_sending(engine, database_url)
    saga_id = f"known-{uuid.uuid4().hex[:8]}"
    await a.process_batch([start(order(saga_id))])
    await a.process_batch([await reply_to_pending(engine, saga_id, SUCCESS["create_order"])])
    stale_reply = await reply_to_pending(engine, saga_id, SUCCESS["reserve_inventory"])  # answers what A last sent
    await b.operate(OperatorVerb.CANCEL, saga_id, reason="test", actor="test")
    cancelled = await saga_row(engine, saga_id)
    assert cancelled.status == SagaStatus.COMPENSATING.value

    assert await a.process_batch([stale_reply]) == [None]  # ignored: it answers a command no longer pending

    after = await saga_row(engine, saga_id)
    assert (after.status, after.step, after.version) == (cancelled.status, cancelled.step, cancelled.version)
    assert [w.records for w in sent_a[2:]] == [()], "A must not act on the state it kept from before the cancel"
    assert locked_batches == [{saga_id}], "the batch written without locks found the row changed, and was redone"


async def test_a_reply_already_claimed_is_not_applied_again(
    engine: AsyncEngine, database_url: str, locked_batches: list[Collection[str]]
) -> None:
    """The message id is in the inbox (another orchestrator consumed it first) while the row is as this one
    wrote it: the batch must not apply it."""
    sent: list[Written] = []
    manager = _manager(engine, database_url, sent)
    saga_id = f"known-{uuid.uuid4().hex[:8]}"
    await manager.process_batch([start(order(saga_id))])
    reply = await reply_to_pending(engine, saga_id, SUCCESS["create_order"])
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO sagaline.inbox (consumer, message_id) VALUES ('orchestrator', :m)"),
            {"m": reply.envelope.message_id},
        )
    before, history = await saga_row(engine, saga_id), await _history(engine, saga_id)

    assert await manager.process_batch([reply]) == [None]

    assert await saga_row(engine, saga_id) == before
    assert await _history(engine, saga_id) == history
    assert [w.records for w in sent[1:]] == [()], "nothing published for the duplicate"
    assert locked_batches == [{saga_id}]


async def test_a_start_of_a_saga_another_orchestrator_started_is_a_duplicate(
    engine: AsyncEngine, database_url: str, locked_batches: list[Collection[str]]
) -> None:
    (a, sent_a), (b, _) = _manager_sending(engine, database_url), _manager_sending(engine, database_url)
    saga_id = f"known-{uuid.uuid4().hex[:8]}"
    await b.process_batch([start(order(saga_id, customer_id="c-2"))])
    before, history = await saga_row(engine, saga_id), await _history(engine, saga_id)

    assert await a.process_batch([start(order(saga_id, customer_id="c-1"))]) == [None]  # a new message id

    assert await saga_row(engine, saga_id) == before
    assert await _history(engine, saga_id) == history
    assert [w.records for w in sent_a] == [()]
    assert a._known.get(saga_id) is None
    assert locked_batches == [{saga_id}]


async def test_a_batch_of_starts_and_replies_is_one_statement_and_numbers_history_after_the_kept_seq(
    engine: AsyncEngine, database_url: str, locked_batches: list[Collection[str]]
) -> None:
    sent: list[Written] = []
    manager = _manager(engine, database_url, sent)
    running = [f"known-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    await manager.process_batch([start(order(saga_id)) for saga_id in running])
    fresh = [f"known-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    replies = [await reply_to_pending(engine, saga_id, SUCCESS["create_order"]) for saga_id in running]

    assert await manager.process_batch([*replies, *(start(order(saga_id)) for saga_id in fresh)]) == [None] * 5

    assert locked_batches == []
    for saga_id in running + fresh:
        seqs = await _history(engine, saga_id)
        assert seqs == list(range(1, len(seqs) + 1))
        kept = manager._known.get(saga_id)
        assert kept is not None
        assert kept.row.last_seq == seqs[-1]
    assert [(await saga_row(engine, saga_id)).step for saga_id in running] == ["reserve_inventory"] * 3


async def test_a_saga_purged_and_started_again_under_its_id_is_read_again(
    engine: AsyncEngine, database_url: str
) -> None:
    (a, sent_a), (b, _) = _manager_sending(engine, database_url), _manager_sending(engine, database_url)
    saga_id = f"known-{uuid.uuid4().hex[:8]}"
    await a.process_batch([start(order(saga_id, customer_id="c-1"))])
    await a.process_batch([await reply_to_pending(engine, saga_id, SUCCESS["create_order"])])
    kept = a._known.get(saga_id)
    assert kept is not None
    async with engine.begin() as conn:  # purged by hand: the history stays (it is append-only)
        await conn.execute(text("DELETE FROM sagaline.saga_instance WHERE id = :i"), {"i": saga_id})
    await b.process_batch([start(order(saga_id, customer_id="c-2"))])
    await b.process_batch([await reply_to_pending(engine, saga_id, SUCCESS["create_order"])])
    assert (await saga_row(engine, saga_id)).version == kept.row.version  # same id, same version, another saga

    await a.process_batch([await reply_to_pending(engine, saga_id, SUCCESS["reserve_inventory"])])

    charge = _last_command(sent_a)
    assert charge["type"] == "ChargePayment"
    assert charge["customer_id"] == "c-2"


class _EvictsWhileLocking(KnownSagas):
    """Keeps one saga and, right after the lock statement took the kept ones, keeps another instead: what a
    commit of a concurrent transaction (the sweeper's) would do while the statement waits."""

    def __init__(self) -> None:
        super().__init__(capacity=1)

    def among(self, saga_ids: Collection[str]) -> dict[str, KnownSaga]:
        taken = super().among(saga_ids)
        for saga in taken.values():
            self.remember("another-saga", RowVersion(1, datetime.now(UTC), 2), saga.state, None)
        return taken


async def test_a_kept_state_evicted_while_the_rows_are_locked_is_still_used(
    engine: AsyncEngine, database_url: str
) -> None:
    sent: list[Written] = []
    manager = _manager(engine, database_url, sent)
    saga_id = f"known-{uuid.uuid4().hex[:8]}"
    await manager.process_batch([start(order(saga_id))])
    kept = manager._known.get(saga_id)
    assert kept is not None
    evicting = _EvictsWhileLocking()
    evicting.remember(saga_id, kept.row, kept.state, kept.trace)

    async with engine.begin() as conn:
        locked = await claim_and_lock(conn, "orchestrator", [str(uuid.uuid4())], [saga_id], evicting)

    assert evicting.get(saga_id) is None
    assert locked.sagas[saga_id][0] == kept.state
    assert locked.last_seqs[saga_id] == kept.row.last_seq


async def test_an_ignored_reply_checks_that_the_row_it_was_ignored_by_is_unchanged(
    engine: AsyncEngine, database_url: str, locked_batches: list[Collection[str]]
) -> None:
    """A reply the kept state ignores (a late copy, under a new message id, of one already applied) writes only
    its claim: without locks when the row is as kept, under locks when another writer changed it since."""
    (a, sent_a), (b, _) = _manager_sending(engine, database_url), _manager_sending(engine, database_url)
    saga_id = f"known-{uuid.uuid4().hex[:8]}"
    await a.process_batch([start(order(saga_id))])
    applied = await reply_to_pending(engine, saga_id, SUCCESS["create_order"])
    await a.process_batch([applied])

    def late_copy() -> Incoming:
        envelope = applied.envelope.model_copy(update={"message_id": str(uuid.uuid4())})
        return incoming("saga.replies", SUCCESS["create_order"], envelope)

    before = await saga_row(engine, saga_id)
    assert await a.process_batch([late_copy()]) == [None]
    assert await saga_row(engine, saga_id) == before
    assert locked_batches == []

    await b.operate(OperatorVerb.CANCEL, saga_id, reason="test", actor="test")
    cancelled = await saga_row(engine, saga_id)
    assert await a.process_batch([late_copy()]) == [None]
    assert await saga_row(engine, saga_id) == cancelled
    assert locked_batches == [{saga_id}]
    assert [w.records for w in sent_a[2:]] == [(), ()]
