"""Writing a transaction's transitions: saga rows, history, telemetry, outbox, each as one bulk statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import Topics
from orchestrator import telemetry
from orchestrator.definition import Actions, SagaState
from orchestrator.messaging import OutboxRecord, Written, write_outbox
from orchestrator.persistence import outbox, snapshot
from orchestrator.persistence._bulk import HistoryAppend, NewSaga, append_histories, insert_sagas, update_sagas
from orchestrator.runtime._outbound import outbox_records


class StartRaced(Exception):  # noqa: N818 - a signal to retry, not an error
    """Another transaction inserted a saga this batch meant to start; the batch is retried and then sees it."""


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One input applied to one saga: ``before`` is None when the input started it."""

    before: SagaState | None
    actions: Actions
    causation_id: str | None
    trace: Mapping[str, str] | None
    span: telemetry.ConsumerSpan | None = None  # the input's consumer span, current while its telemetry runs
    start: telemetry.SagaStart | None = None


async def write_transitions(
    conn: AsyncConnection,
    transitions: Sequence[Transition],
    *,
    topics: Topics,
    now: datetime,
    after_commit: telemetry.AfterCommit,
    inline: bool,
) -> Written:
    """Persist transitions in order. Several may concern one saga: its row gets the last state. Returns
    the outbox rows written (``inline``: for the caller to publish after the commit)."""
    if not transitions:
        return Written(ids=(), records=())
    new = [NewSaga(state=t.actions.state, trace_context=t.trace) for t in transitions if t.before is None]
    inserted = await insert_sagas(conn, new, now=now)
    if len(inserted) < len(new):
        raise StartRaced(", ".join(s.state.saga_id for s in new if s.state.saga_id not in inserted))
    as_inserted = {s.state.saga_id: s.state for s in new}
    final: dict[str, SagaState] = {}
    for t in transitions:
        final[t.actions.state.saga_id] = t.actions.state
    await update_sagas(
        conn, [state for saga_id, state in final.items() if state is not as_inserted.get(saga_id)], now=now
    )
    await append_histories(
        conn,
        [
            HistoryAppend(
                saga_id=t.actions.state.saga_id,
                entries=t.actions.history,
                from_status=t.before.status if t.before else None,
                to_status=t.actions.state.status,
                snapshot=snapshot(t.actions.state),
            )
            for t in transitions
        ],
        now=now,
    )
    records: list[OutboxRecord] = []
    for t in transitions:
        rows = outbox_records(t.actions, topics, causation_id=t.causation_id, trace_context=t.trace)
        with telemetry.handling(t.span):
            rows = await telemetry.saga_transition(
                conn, t.before, t.actions, trace=t.trace, records=rows, after_commit=after_commit, start=t.start
            )
        records += rows
    return await write_outbox(conn, outbox, records, inline=inline)
