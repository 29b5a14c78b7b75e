"""The saga manager: one Postgres transaction per handled input (DESIGN §2)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

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
from orchestrator.messaging import Incoming, Rejected, claim_inbox, write_outbox
from orchestrator.persistence import (
    append_history,
    claim_due,
    inbox,
    insert_saga,
    lock_saga,
    outbox,
    save_saga,
    snapshot,
)
from orchestrator.runtime._outbound import outbox_records
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
    """Applies starts, replies, timeouts, cancels and resumes to sagas. Each call is one transaction:
    inbox claim → row lock → pure engine → state + history + outbox → commit, then ``on_commit``."""

    def __init__(
        self,
        db: AsyncEngine,
        settings: Settings,
        definitions: DefinitionRegistry,
        *,
        on_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = async_sessionmaker(db, expire_on_commit=False)
        self._settings = settings
        self._definitions = definitions
        self._on_commit = on_commit
        self._clock = clock

    def _suppressed(self, message_id: str) -> None:
        log.info("duplicate message %s suppressed", message_id)

    async def process(self, incoming: Incoming) -> None:
        message = incoming.message
        if isinstance(message, StartCommand):
            await self._start(incoming, message)
        elif isinstance(message, Reply):
            await self._reply(incoming, message)
        else:
            raise Rejected(
                "wrong-topic", f"{message.type_name()} is a {message.kind}; expected a start command or reply"
            )

    async def _start(self, incoming: Incoming, command: StartCommand) -> None:
        definition = self._definitions.for_start(command.type_name())
        if definition is None:
            raise Rejected("unknown-saga-type", f"no saga starts with {command.type_name()}")
        envelope = incoming.envelope
        saga_id = (
            definition.saga_id_of(command)
            or envelope.saga_id
            or str(uuid.uuid5(SAGA_ID_NAMESPACE, envelope.message_id))
        )
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if not await claim_inbox(session, inbox, CONSUMER, envelope.message_id):
                self._suppressed(envelope.message_id)
                return
            actions = engine.start(definition, saga_id, command, now)
            trace = (
                telemetry.saga_start_context(incoming.trace_headers, saga_id=saga_id, saga_type=definition.name) or None
            )
            if not await insert_saga(session, actions.state, trace_context=trace, now=now):
                self._suppressed(envelope.message_id)
                return
            await self._persist(session, None, actions, causation_id=envelope.message_id, trace=trace, now=now)
        self._on_commit()

    async def _reply(self, incoming: Incoming, reply: Reply) -> None:
        envelope = incoming.envelope
        if envelope.saga_id is None:
            raise Rejected("bad-envelope", "a reply must carry sagaline-saga-id")
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if not await claim_inbox(session, inbox, CONSUMER, envelope.message_id):
                self._suppressed(envelope.message_id)
                return
            locked = await lock_saga(session, envelope.saga_id)
            if locked is None:
                raise Rejected("unknown-saga", f"no saga {envelope.saga_id!r}")
            state, trace = locked
            try:
                definition = self._definition(state)
            except UnknownDefinition as exc:
                raise Rejected("unknown-definition", str(exc)) from exc
            try:
                actions = engine.on_reply(
                    definition,
                    state,
                    reply,
                    causation_id=envelope.causation_id,
                    attempt=envelope.attempt,
                    now=now,
                )
            except UnexpectedReply as exc:
                raise Rejected("unexpected-reply", str(exc)) from exc
            if actions.ignored:  # stale or duplicate: only the inbox row is written
                return
            await self._persist(session, state, actions, causation_id=envelope.message_id, trace=trace, now=now)
        self._on_commit()

    async def sweep(self) -> int:
        """Apply the timeout transition to every saga whose deadline or time-to-live has passed."""
        now = self._clock()
        changed = 0
        async with self._sessions() as session, session.begin():
            for state, trace in await claim_due(session, now, self._settings.sweeper_batch_size):
                try:
                    definition = self._definition(state)
                except UnknownDefinition as exc:
                    log.error("saga %s is due but cannot be swept: %s", state.saga_id, exc)  # noqa: TRY400
                    continue
                actions = engine.on_timeout(definition, state, now)
                if not actions.ignored:
                    await self._persist(session, state, actions, causation_id=None, trace=trace, now=now)
                    changed += 1
        if changed:
            self._on_commit()
        return changed

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
        async with self._sessions() as session, session.begin():
            locked = await lock_saga(session, saga_id)
            if locked is None:
                raise SagaNotFoundError(saga_id)
            state, trace = locked
            refused = refusal(verb, state)
            if refused is not None:
                raise OperationRefusedError(verb, state, refused)
            actions = TRANSITIONS[verb](self._definition(state), state, now, reason, actor=actor)
            await self._persist(session, state, actions, causation_id=None, trace=trace, now=now)
        self._on_commit()
        return actions

    async def cancel(self, saga_id: str, reason: str, *, actor: str = DEFAULT_ACTOR) -> Actions:
        return await self.operate(OperatorVerb.CANCEL, saga_id, reason=reason, actor=actor)

    async def resume(self, saga_id: str, *, reason: str = "", actor: str = DEFAULT_ACTOR) -> Actions:
        return await self.operate(OperatorVerb.RESUME, saga_id, reason=reason, actor=actor)

    def _definition(self, state: SagaState) -> SagaDefinition[Any]:
        return self._definitions.get(state.saga_type, state.definition_version)

    async def _persist(
        self,
        session: AsyncSession,
        before: SagaState | None,
        actions: Actions,
        *,
        causation_id: str | None,
        trace: Mapping[str, str] | None,
        now: datetime,
    ) -> None:
        if before is not None:
            await save_saga(session, actions.state, now=now)
        await append_history(
            session,
            actions.state.saga_id,
            actions.history,
            from_status=before.status if before else None,
            to_status=actions.state.status,
            now=now,
            snapshot=snapshot(actions.state),
        )
        records = outbox_records(actions, self._settings.topics, causation_id=causation_id, trace_context=trace)
        records = await telemetry.saga_transition(session, before, actions, trace=trace, records=records)
        await write_outbox(session, outbox, records)
