"""The participant kit: ``@participant.handles(Command)`` handlers run as local transactions with
inbox dedupe and a reply through the participant's own outbox, all in one commit."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts import Command, CommandFailed, Envelope, FailureReply, Reply, header_name
from orchestrator import telemetry
from orchestrator.messaging import (
    Incoming,
    OutboxRecord,
    OutboxRelay,
    Processor,
    Rejected,
    StoredReply,
    claim_inbox,
    encode_body,
    store_reply,
    stored_reply,
    write_outbox,
)
from orchestrator.persistence import inbox_table, outbox_table
from orchestrator.runtime import ServiceSpec
from orchestrator.settings import Settings
from orchestrator.transient import is_transient

log = logging.getLogger(__name__)

REPLY_ID_NAMESPACE = uuid.UUID("a3c2b1d0-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
C = TypeVar("C", bound=Command)


@dataclass(frozen=True, kw_only=True)
class LocalTransaction:
    """What a handler gets besides its command: the open session (already in a transaction),
    the envelope, and the service's settings."""

    session: AsyncSession
    envelope: Envelope
    settings: Settings


Handler = Callable[[LocalTransaction, C], Awaitable[Reply]]


class _RetryableOutcome(Exception):  # noqa: N818 - control flow, never escapes the kit
    def __init__(self, reply: FailureReply) -> None:
        super().__init__(reply.reason)
        self.reply = reply


class Participant:
    """One service's command handlers and its own tables (schema, inbox, outbox)."""

    def __init__(self, name: str, *, metadata: MetaData) -> None:
        assert metadata.schema is not None, "give the participant's MetaData a schema"
        self.name = name
        self.schema = metadata.schema
        self.metadata = metadata
        self.outbox: Table = outbox_table(metadata, self.schema)
        self.inbox: Table = inbox_table(metadata, self.schema)
        self._handlers: dict[str, Handler[Any]] = {}

    def handles(self, command: type[C]) -> Callable[[Handler[C]], Handler[C]]:
        def register(handler: Handler[C]) -> Handler[C]:
            name = command.type_name()
            if name in self._handlers:
                raise ValueError(f"{self.name}: two handlers for {name}")
            self._handlers[name] = handler
            return handler

        return register

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def processor(self, db: AsyncEngine, settings: Settings, *, on_commit: Callable[[], None]) -> CommandProcessor:
        return CommandProcessor(self, db, settings, on_commit=on_commit)

    def spec(self, settings: Settings) -> ServiceSpec:
        def make_processor(db: AsyncEngine, relay: OutboxRelay) -> Processor:
            return self.processor(db, settings, on_commit=relay.wake).process

        return ServiceSpec(
            name=self.name,
            outbox=self.outbox,
            topics=[settings.topics.commands(self.name)],
            make_processor=make_processor,
        )


class CommandProcessor:
    """Executes one command. A duplicate is answered with the stored reply, never re-executed.
    Retryable failures are not stored, so a retry of the same message id runs the handler again."""

    def __init__(
        self, participant: Participant, db: AsyncEngine, settings: Settings, *, on_commit: Callable[[], None]
    ) -> None:
        self._p = participant
        self._sessions = async_sessionmaker(db, expire_on_commit=False)
        self._settings = settings
        self._on_commit = on_commit

    async def process(self, incoming: Incoming) -> None:
        command = incoming.message
        handler = self._p._handlers.get(command.type_name())  # noqa: SLF001 - the kit's own registry
        if not isinstance(command, Command) or handler is None:
            raise Rejected("unknown-command", f"{self._p.name} does not handle {command.type_name()}")
        envelope = incoming.envelope
        if envelope.saga_id is None:
            raise Rejected("bad-envelope", "a command must carry sagaline-saga-id")
        with telemetry.local_transaction(self._p.name, incoming):
            try:
                await self._execute(incoming, handler, command)
            except _RetryableOutcome as outcome:
                await self._reply_only(incoming, outcome.reply)
        self._on_commit()

    async def _execute(self, incoming: Incoming, handler: Handler[Any], command: Command) -> None:
        envelope = incoming.envelope
        p = self._p
        async with self._sessions() as session, session.begin():
            if not await claim_inbox(session, p.inbox, p.name, envelope.message_id):
                await self._answer_duplicate(session, incoming)
                return
            reply = await self._run_handler(session, envelope, handler, command)
            if isinstance(reply, FailureReply) and reply.retryable:
                raise _RetryableOutcome(reply)  # rolls back the inbox claim too
            record = self._reply_record(incoming, reply, retryable=False)
            await store_reply(
                session,
                p.inbox,
                p.name,
                envelope.message_id,
                StoredReply(topic=record.topic, headers=dict(record.headers), payload=dict(record.payload)),
            )
            await write_outbox(session, p.outbox, [record])

    async def _run_handler(
        self,
        session: AsyncSession,
        envelope: Envelope,
        handler: Handler[Any],
        command: Command,
    ) -> Reply:
        savepoint = await session.begin_nested()
        try:
            reply = await handler(
                LocalTransaction(session=session, envelope=envelope, settings=self._settings), command
            )
        except Exception as exc:
            await savepoint.rollback()
            if is_transient(exc):
                raise
            log.exception("%s handler for %s raised", self._p.name, command.type_name())
            return CommandFailed(reason=f"{type(exc).__name__}: {exc}", retryable=True, error_type="handler-error")
        if isinstance(reply, FailureReply):
            await savepoint.rollback()  # a refusal leaves no partial effects
        else:
            await savepoint.commit()
        return reply

    async def _answer_duplicate(self, session: AsyncSession, incoming: Incoming) -> None:
        stored = await stored_reply(session, self._p.inbox, self._p.name, incoming.envelope.message_id)
        if stored is None:
            return
        log.info("duplicate command %s answered from its stored reply", incoming.envelope.message_id)
        headers = {**stored.headers, **telemetry.trace_headers(incoming.trace_headers)}
        headers[header_name("attempt")] = str(incoming.envelope.attempt)
        await write_outbox(
            session,
            self._p.outbox,
            [OutboxRecord(topic=stored.topic, key=incoming.envelope.saga_id, headers=headers, payload=stored.payload)],
        )

    async def _reply_only(self, incoming: Incoming, reply: Reply) -> None:
        async with self._sessions() as session, session.begin():
            await write_outbox(session, self._p.outbox, [self._reply_record(incoming, reply, retryable=True)])

    def _reply_record(self, incoming: Incoming, reply: Reply, *, retryable: bool) -> OutboxRecord:
        command = incoming.envelope
        suffix = f"reply/{command.attempt}" if retryable else "reply"
        envelope = Envelope(
            message_id=str(uuid.uuid5(REPLY_ID_NAMESPACE, f"{command.message_id}/{suffix}")),
            type=reply.type_name(),
            saga_id=command.saga_id,
            saga_type=command.saga_type,
            step=command.step,
            causation_id=command.message_id,
            correlation_id=command.correlation_id or command.saga_id,
            attempt=command.attempt,
        )
        return OutboxRecord(
            topic=command.reply_to or self._settings.topics.replies,
            key=command.saga_id,
            headers={**telemetry.reply_headers(reply, incoming.trace_headers), **envelope.to_headers()},
            payload=encode_body(reply),
        )
