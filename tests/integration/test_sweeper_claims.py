"""What the deadline sweeper claims, over real Postgres: live sagas whose step deadline passed and running sagas
whose time to live passed, most overdue deadline first, each once, skipping rows another transaction holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from orchestrator.definition import SagaState, SagaStatus
from orchestrator.migrate import upgrade
from orchestrator.persistence import claim_due, create_engine, insert_saga

pytestmark = pytest.mark.integration

# Long ago: no other test's saga is due then, and no running sweeper (whose now is today) sees these as due
# before this module's own cleanup removes them.
NOW = datetime(2000, 1, 1, tzinfo=UTC)
PAST, FUTURE = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade, database_url)
    db = create_engine(database_url, pool_size=3)
    yield db
    async with db.begin() as conn:
        purge = text("DELETE FROM sagaline.saga_instance WHERE id LIKE 'due-%' AND created_at <= :n")
        await conn.execute(purge, {"n": NOW})
    await db.dispose()


def _saga(name: str, status: SagaStatus, deadline: datetime | None, expires: datetime | None) -> SagaState:
    return SagaState(
        saga_id=f"due-{name}-{uuid.uuid4().hex[:6]}",
        saga_type="order_fulfillment",
        status=status,
        step="reserve_inventory" if status.is_live else None,
        data={"input": {}, "results": {}},
        waiting="reply" if status.is_live else None,
        deadline_at=deadline,
        expires_at=expires,
    )


async def test_the_sweeper_claims_passed_deadlines_and_expired_sagas_once_each(engine: AsyncEngine) -> None:
    sagas = {
        "late": _saga("late", SagaStatus.RUNNING, PAST - timedelta(minutes=5), FUTURE),
        "undoing-late": _saga("undoing-late", SagaStatus.COMPENSATING, PAST, FUTURE),
        "expired": _saga("expired", SagaStatus.RUNNING, FUTURE, PAST),
        "late-and-expired": _saga("late-and-expired", SagaStatus.RUNNING, PAST - timedelta(minutes=2), PAST),
        "undoing-expired": _saga("undoing-expired", SagaStatus.COMPENSATING, FUTURE, PAST),
        "on-time": _saga("on-time", SagaStatus.RUNNING, FUTURE, FUTURE),
        "done": _saga("done", SagaStatus.COMPLETED, None, PAST),
        "held": _saga("held", SagaStatus.RUNNING, PAST, PAST),
    }
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        for state in sagas.values():
            await insert_saga(session, state, trace_context=None, now=NOW)

    async with engine.connect() as holder, holder.begin():
        await holder.execute(
            text("SELECT 1 FROM sagaline.saga_instance WHERE id = :i FOR UPDATE"), {"i": sagas["held"].saga_id}
        )
        async with engine.begin() as conn:
            claimed = [state.saga_id for state, _ in await claim_due(conn, NOW, limit=10)]

    names = {state.saga_id: name for name, state in sagas.items()}
    assert [names[saga_id] for saga_id in claimed[:3]] == ["late", "late-and-expired", "undoing-late"]
    assert sorted(names[saga_id] for saga_id in claimed) == ["expired", "late", "late-and-expired", "undoing-late"]


async def test_the_sweeper_claims_at_most_its_batch_deadlines_first(engine: AsyncEngine) -> None:
    then = NOW - timedelta(days=365)  # only this test's sagas are due then
    late = [_saga(f"late{n}", SagaStatus.RUNNING, then - timedelta(seconds=n + 1), then) for n in range(2)]
    expired = [_saga(f"expired{n}", SagaStatus.RUNNING, then + timedelta(hours=1), then) for n in range(3)]
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        for state in late + expired:
            await insert_saga(session, state, trace_context=None, now=then)

    async with engine.begin() as conn:
        claimed = [state.saga_id for state, _ in await claim_due(conn, then, limit=3)]

    assert claimed[:2] == [late[1].saga_id, late[0].saga_id]
    assert len(claimed) == 3
    assert claimed[2] in {state.saga_id for state in expired}
