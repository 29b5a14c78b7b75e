"""Writing a transaction's transitions: saga rows, history and outbox in one statement, telemetry after commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import Topics
from orchestrator import telemetry
from orchestrator.definition import Actions, SagaState
from orchestrator.messaging import OutboxRecord, Written
from orchestrator.persistence import snapshot
from orchestrator.persistence._bulk import Basis, HistoryAppend, NewSaga, write_batch
from orchestrator.persistence._known import KnownSagas
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
    known: KnownSagas | None = None,
    basis: Basis | None = None,
) -> Written:
    """Persist transitions in order. Several may concern one saga: its row gets the last state. Returns
    the outbox rows written (``inline``: for the caller to publish after the commit). ``known`` learns the
    rows written once the transaction committed. ``basis``: see ``write_batch`` (a batch written without row
    locks writes its inbox claims even when no input changed a saga)."""
    if not transitions and (basis is None or basis.unlocked is None):
        return Written(ids=(), records=())
    new = [t for t in transitions if t.before is None]
    final: dict[str, SagaState] = {}
    for t in transitions:
        final[t.actions.state.saga_id] = t.actions.state
    new_ids = {t.actions.state.saga_id for t in new}
    records: list[OutboxRecord] = []
    for t in transitions:
        rows = outbox_records(t.actions, topics, causation_id=t.causation_id, trace_context=t.trace)
        with telemetry.handling(t.span):
            rows = await telemetry.saga_transition(
                conn, t.before, t.actions, trace=t.trace, records=rows, after_commit=after_commit, start=t.start
            )
        records += rows
    written = await write_batch(
        conn,
        # A saga started and moved on in this batch is inserted as it ends the batch.
        new=[NewSaga(state=final[t.actions.state.saga_id], trace_context=t.trace) for t in new],
        updated=[state for saga_id, state in final.items() if saga_id not in new_ids],
        appends=[
            HistoryAppend(
                saga_id=t.actions.state.saga_id,
                entries=t.actions.history,
                from_status=t.before.status if t.before else None,
                to_status=t.actions.state.status,
                snapshot=snapshot(t.actions.state),
            )
            for t in transitions
        ],
        records=records,
        inline=inline,
        now=now,
        basis=basis,
    )
    if len(written.inserted) < len(new):
        raise StartRaced(", ".join(sorted(new_ids - written.inserted)))
    if known is not None:
        traces = {t.actions.state.saga_id: t.trace for t in transitions}
        written_rows = written.rows

        def remember() -> None:
            for saga_id, state in final.items():
                row = written_rows.get(saga_id)
                if row is None:  # its last history seq is not known: read the row next time
                    known.forget(saga_id)
                else:
                    known.remember(saga_id, row, state, traces[saga_id])

        after_commit.append(remember)
    return written.outbox
