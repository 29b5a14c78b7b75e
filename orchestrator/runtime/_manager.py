"""The saga manager: one Postgres transaction per consumed batch of inputs (DESIGN §2, docs/design.md)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts import Reply, StartCommand
from orchestrator import definition as engine
from orchestrator import telemetry
from orchestrator.definition import (
    DEFAULT_ACTOR,
    TRANSITIONS,
    Actions,
    DefinitionRegistry,
    OperatorVerb,
    SagaDefinition,
    SagaState,
    UnexpectedReply,
    UnknownDefinition,
    refusal,
)
from orchestrator.messaging import Incoming, Publish, Rejected, Written, release_inbox
from orchestrator.persistence import BatchConnection, claim_due, inbox
from orchestrator.persistence._bulk import Basis, Unlocked, WriteConflict, claim_and_lock, lock_sagas
from orchestrator.persistence._known import KnownSaga, KnownSagas
from orchestrator.runtime._transitions import StartRaced, Transition, write_transitions
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

CONSUMER = "orchestrator"
SAGA_ID_NAMESPACE = uuid.UUID("0b7d5e52-8f0c-4a57-9e3b-1c1f2d3e4a5b")


def utc_now() -> datetime:
    return datetime.now(UTC)


class SagaNotFoundError(LookupError):
    """No saga with this id."""


class OperationRefusedError(ValueError):
    """An operator verb does not apply to the saga's current state; nothing was changed."""

    def __init__(self, verb: OperatorVerb, state: SagaState, message: str) -> None:
        self.verb = verb
        self.status = state.status
        super().__init__(message)


class SagaManager:
    """Applies starts, replies, timeouts and operator verbs to sagas. Each call is one transaction:
    inbox claims → row locks (in id order) → pure engine per input, in order → state + history + outbox →
    commit, then ``publish`` of the outbox rows (without one, the rows wake the relays by NOTIFY)."""

    def __init__(
        self,
        db: AsyncEngine,
        settings: Settings,
        definitions: DefinitionRegistry,
        *,
        publish: Publish | None = None,
        clock: Callable[[], datetime] = utc_now,
        batches: BatchConnection | None = None,
    ) -> None:
        self._db = db
        # Batches come one at a time, on the host's kept connection (``BatchConnection``) or one checked out
        # each; the sweeper and operators check out their own.
        self._batches = batches or BatchConnection(db)
        self._settings = settings
        self._definitions = definitions
        self._publish = publish
        self._clock = clock
        self._known = KnownSagas()

    async def process_batch(self, batch: Sequence[Incoming]) -> list[Rejected | None]:
        """Start commands and replies, in order; returns None or the rejection, input by input."""
        outcomes: list[Rejected | None] = [None] * len(batch)
        accepted: list[tuple[int, Incoming, str]] = []
        for index, incoming in enumerate(batch):
            try:
                accepted.append((index, incoming, self._saga_id(incoming)))
            except Rejected as exc:
                outcomes[index] = exc
        if not accepted:
            return outcomes
        starts: dict[str, telemetry.SagaStart] = {}  # one start span per start command, however often it is tried
        applied = await self._without_locks(accepted, starts)
        while applied is None:
            try:
                applied = await self._under_locks(accepted, starts)
            except StartRaced as raced:
                log.info("sagas %s were started concurrently; handling the batch again", raced)
        for (index, _, _), outcome in zip(accepted, applied, strict=True):
            outcomes[index] = outcome
        return outcomes

    async def _without_locks(
        self, accepted: Sequence[tuple[int, Incoming, str]], starts: dict[str, telemetry.SagaStart]
    ) -> list[Rejected | None] | None:
        """The batch computed from the states this process wrote last and written in one statement that is its
        own transaction, when every reply is to such a saga; None when that did not work out (a reply to a saga
        it does not keep, a rejected input, or a row, claim or start another transaction changed meanwhile):
        then nothing was written. The common case costs one round trip instead of four (BEGIN, claim and lock,
        write, COMMIT), and Postgres takes no row locks first."""
        kept = self._known.among({saga_id for _, _, saga_id in accepted})
        replies_kept = all(
            saga_id in kept for _, incoming, saga_id in accepted if not isinstance(incoming.message, StartCommand)
        )
        if not replies_kept:
            return None
        now = self._clock()
        after_commit: telemetry.AfterCommit = []
        async with self._batches.use() as conn:
            run = _BatchRun(self, conn, now, starts)
            run.assume_kept([incoming for _, incoming, _ in accepted], kept)
            outcomes = run.apply_all(accepted)
            if any(outcome is not None for outcome in outcomes):
                return None  # a rejection: its claim must not be written, nor it dead-lettered if it is a duplicate
            unlocked = Unlocked(
                consumer=CONSUMER,
                claims=list(dict.fromkeys(incoming.envelope.message_id for _, incoming, _ in accepted)),
                rows={saga_id: known.row for saga_id, known in kept.items()},
            )
            try:
                basis = Basis(last_seqs=run.last_seqs, unlocked=unlocked)
                written = await self._write(conn, run.transitions, now, after_commit, basis)
            except WriteConflict as conflict:
                log.info("handling a batch again under row locks: %s", conflict)
                return None
            await conn.commit()  # only if telemetry's reads began a transaction; else the statement was its own
        self._committed(written, after_commit)
        return outcomes

    async def _under_locks(
        self, accepted: Sequence[tuple[int, Incoming, str]], starts: dict[str, telemetry.SagaStart]
    ) -> list[Rejected | None]:
        now = self._clock()
        after_commit: telemetry.AfterCommit = []
        async with self._batches.use() as conn, conn.begin():
            run = _BatchRun(self, conn, now, starts)
            await run.prepare([incoming for _, incoming, _ in accepted], {saga_id for _, _, saga_id in accepted})
            outcomes = run.apply_all(accepted)
            await run.release_rejected()
            written = await self._write(conn, run.transitions, now, after_commit, Basis(last_seqs=run.last_seqs))
        self._committed(written, after_commit)
        return outcomes

    def _saga_id(self, incoming: Incoming) -> str:
        """The saga an input is for, or why it cannot be processed (before anything is written)."""
        message, envelope = incoming.message, incoming.envelope
        if isinstance(message, StartCommand):
            definition = self._definitions.for_start(message.type_name())
            if definition is None:
                raise Rejected("unknown-saga-type", f"no saga starts with {message.type_name()}")
            return (
                definition.saga_id_of(message)
                or envelope.saga_id
                or str(uuid.uuid5(SAGA_ID_NAMESPACE, envelope.message_id))
            )
        if isinstance(message, Reply):
            if envelope.saga_id is None:
                raise Rejected("bad-envelope", "a reply must carry sagaline-saga-id")
            return envelope.saga_id
        raise Rejected("wrong-topic", f"{message.type_name()} is a {message.kind}; expected a start command or reply")

    async def sweep(self) -> int:
        """Apply the timeout transition to every saga whose deadline or time-to-live has passed."""
        now = self._clock()
        after_commit: telemetry.AfterCommit = []
        async with self._db.begin() as conn:
            transitions = []
            for state, trace in await claim_due(conn, now, self._settings.sweeper_batch_size):
                try:
                    definition = self._definition(state)
                except UnknownDefinition as exc:
                    log.error("saga %s is due but cannot be swept: %s", state.saga_id, exc)  # noqa: TRY400
                    continue
                actions = engine.on_timeout(definition, state, now)
                if not actions.ignored:
                    transitions.append(Transition(before=state, actions=actions, causation_id=None, trace=trace))
            written = await self._write(conn, transitions, now, after_commit)
        self._committed(written, after_commit)
        return len(transitions)

    async def operate(
        self,
        verb: OperatorVerb,
        saga_id: str,
        *,
        reason: str = "",
        actor: str = DEFAULT_ACTOR,
    ) -> Actions:
        """Apply an operator's verb in one transaction, recording who and why in the history. Raises
        ``SagaNotFoundError`` or ``OperationRefusedError`` (then nothing is written)."""
        now = self._clock()
        after_commit: telemetry.AfterCommit = []
        async with self._db.begin() as conn:
            locked = (await lock_sagas(conn, [saga_id])).get(saga_id)
            if locked is None:
                raise SagaNotFoundError(saga_id)
            state, trace = locked
            refused = refusal(verb, state)
            if refused is not None:
                raise OperationRefusedError(verb, state, refused)
            actions = TRANSITIONS[verb](self._definition(state), state, now, reason, actor=actor)
            transition = Transition(before=state, actions=actions, causation_id=None, trace=trace)
            written = await self._write(conn, [transition], now, after_commit)
        self._committed(written, after_commit)
        return actions

    async def _write(
        self,
        conn: AsyncConnection,
        transitions: Sequence[Transition],
        now: datetime,
        after_commit: telemetry.AfterCommit,
        basis: Basis | None = None,
    ) -> Written:
        return await write_transitions(
            conn,
            transitions,
            topics=self._settings.topics,
            now=now,
            after_commit=after_commit,
            inline=self._publish is not None,
            known=self._known,
            basis=basis,
        )

    def _committed(self, written: Written, after_commit: telemetry.AfterCommit) -> None:
        telemetry.run_after_commit(after_commit)
        if self._publish is not None:
            self._publish(written)

    def _definition(self, state: SagaState) -> SagaDefinition[Any]:
        return self._definitions.get(state.saga_type, state.definition_version)

    def _start_definition(self, command: StartCommand) -> SagaDefinition[Any]:
        definition = self._definitions.for_start(command.type_name())
        assert definition is not None, "checked when the input was accepted"
        return definition


class _BatchRun:
    """The inputs of one batch against the sagas they lock: each input sees the state the previous input of
    its saga left, and the transitions are written together at the end."""

    def __init__(
        self, manager: SagaManager, conn: AsyncConnection, now: datetime, starts: dict[str, telemetry.SagaStart]
    ) -> None:
        self._manager = manager
        self._conn = conn
        self._now = now
        self._starts = starts
        self._claimed: set[str] = set()
        self._rejected: set[str] = set()
        self._sagas: dict[str, tuple[SagaState, Mapping[str, str] | None]] = {}
        self.last_seqs: dict[str, int] = {}
        self.transitions: list[Transition] = []

    async def prepare(self, inputs: Sequence[Incoming], saga_ids: set[str]) -> None:
        ids = [incoming.envelope.message_id for incoming in inputs]
        locked = await claim_and_lock(
            self._conn,
            CONSUMER,
            ids,
            saga_ids,
            self._manager._known,  # noqa: SLF001 - the manager's own memory
        )
        self._claimed, self._sagas, self.last_seqs = locked.claimed, locked.sagas, locked.last_seqs

    def assume_kept(self, inputs: Sequence[Incoming], kept: Mapping[str, KnownSaga]) -> None:
        """What ``prepare`` would find if no other transaction changed these sagas' rows and every message is
        new: every id claimed, the kept states."""
        self._claimed = {incoming.envelope.message_id for incoming in inputs}
        self._sagas = {saga_id: (known.state, known.trace) for saga_id, known in kept.items()}
        self.last_seqs = {saga_id: known.row.last_seq for saga_id, known in kept.items()}

    def apply_all(self, accepted: Sequence[tuple[int, Incoming, str]]) -> list[Rejected | None]:
        outcomes: list[Rejected | None] = []
        for _, incoming, saga_id in accepted:
            with telemetry.handling(incoming.span):
                outcomes.append(self.apply(incoming, saga_id))
        return outcomes

    async def release_rejected(self) -> None:
        await release_inbox(self._conn, inbox, CONSUMER, self._rejected)

    def apply(self, incoming: Incoming, saga_id: str) -> Rejected | None:
        message_id = incoming.envelope.message_id
        if message_id not in self._claimed:
            log.info("duplicate message %s suppressed", message_id)
            telemetry.inbox_duplicate(CONSUMER)
            return None
        self._claimed.discard(message_id)
        try:
            if isinstance(incoming.message, StartCommand):
                self._start(incoming, incoming.message, saga_id)
            else:
                assert isinstance(incoming.message, Reply)
                self._reply(incoming, incoming.message, saga_id)
        except Rejected as exc:
            self._rejected.add(message_id)
            self._claimed.add(message_id)  # not processed: a later copy in this batch gets its chance
            return exc
        self._rejected.discard(message_id)
        return None

    def _start(self, incoming: Incoming, command: StartCommand, saga_id: str) -> None:
        if saga_id in self._sagas:  # a duplicate start with a new message id
            log.info("duplicate message %s suppressed", incoming.envelope.message_id)
            return
        definition = self._manager._start_definition(command)  # noqa: SLF001 - the manager's own helper
        actions = engine.start(definition, saga_id, command, self._now)
        start = self._starts.get(incoming.envelope.message_id)
        if start is None:
            start = telemetry.saga_start(incoming.trace_headers, saga_id=saga_id, saga_type=definition.name)
            self._starts[incoming.envelope.message_id] = start
        trace = start.context or None
        self._sagas[saga_id] = (actions.state, trace)
        self.transitions.append(
            Transition(
                before=None,
                actions=actions,
                causation_id=incoming.envelope.message_id,
                trace=trace,
                span=incoming.span,
                start=start,
            )
        )

    def _reply(self, incoming: Incoming, reply: Reply, saga_id: str) -> None:
        envelope = incoming.envelope
        locked = self._sagas.get(saga_id)
        if locked is None:
            raise Rejected("unknown-saga", f"no saga {saga_id!r}")
        state, trace = locked
        try:
            definition = self._manager._definition(state)  # noqa: SLF001 - the manager's own helper
        except UnknownDefinition as exc:
            raise Rejected("unknown-definition", str(exc)) from exc
        try:
            actions = engine.on_reply(
                definition,
                state,
                reply,
                causation_id=envelope.causation_id,
                attempt=envelope.attempt,
                now=self._now,
            )
        except UnexpectedReply as exc:
            raise Rejected("unexpected-reply", str(exc)) from exc
        if actions.ignored:  # stale or duplicate: only the inbox row is written
            return
        self._sagas[saga_id] = (actions.state, trace)
        self.transitions.append(
            Transition(
                before=state,
                actions=actions,
                causation_id=envelope.message_id,
                trace=trace,
                span=incoming.span,
            )
        )
