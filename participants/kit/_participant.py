"""The participant kit: ``@participant.handles(Command)`` handlers run as local transactions with
inbox dedupe and a reply through the participant's own outbox, all in one commit per consumed batch."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts import Command, CommandFailed, Envelope, FailureReply, Reply, header_name
from orchestrator import telemetry
from orchestrator.definition import name_based_id
from orchestrator.messaging import (
    BatchProcessor,
    Incoming,
    OutboxRecord,
    Publish,
    Rejected,
    StoredReply,
    Written,
    claim_answered,
    claim_inbox_many,
    encode_body,
    release_inbox,
    store_replies,
    stored_replies,
    write_outbox,
)
from orchestrator.persistence import BatchConnection, inbox_table, outbox_table
from orchestrator.runtime import ServiceSpec
from orchestrator.settings import Settings
from orchestrator.transient import is_transient
from participants.kit._sql import Sql

log = logging.getLogger(__name__)

REPLY_ID_NAMESPACE = uuid.UUID("a3c2b1d0-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
C = TypeVar("C", bound=Command)


@dataclass(frozen=True, kw_only=True)
class LocalTransaction:
    """What a handler gets besides its command: the open SQLAlchemy (Core) connection, already in the batch's
    transaction, the same transaction's driver connection for hot statements (``sql``), the envelope, and the
    service's settings."""

    connection: AsyncConnection
    sql: Sql
    envelope: Envelope
    settings: Settings


@dataclass(frozen=True, kw_only=True)
class BatchTransaction:
    """What a batch handler gets besides its commands: as ``LocalTransaction``, with one envelope per command."""

    connection: AsyncConnection
    sql: Sql
    envelopes: Sequence[Envelope]
    settings: Settings


Handler = Callable[[LocalTransaction, C], Awaitable[Reply]]
BatchHandler = Callable[[BatchTransaction, Sequence[C]], Awaitable[Sequence[Reply]]]


class _UndoBatch(Exception):  # noqa: N818 - control flow, never escapes the kit
    """A handler refused or broke: its effects leave with the transaction, and the batch runs again with
    that handler's reply remembered instead of the handler."""


class _Duplicates(_UndoBatch):
    """A batch handled as new met messages claimed before: it runs again, claiming first."""


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
        self._batch_handlers: dict[str, BatchHandler[Any]] = {}

    def handles(self, command: type[C]) -> Callable[[Handler[C]], Handler[C]]:
        def register(handler: Handler[C]) -> Handler[C]:
            self._register(command, handler)
            return handler

        return register

    def handles_batch(self, command: type[C]) -> Callable[[BatchHandler[C]], BatchHandler[C]]:
        """Register a handler that takes consecutive ``command``s of a consumed batch in one call (a statement
        for all of them instead of one each) and returns one reply per command, in order. It applies them as if
        one after the other: a later command sees what an earlier one did. Unlike ``handles``, a failure reply
        is not undone by the kit, so the handler must decide before it writes (a refused command leaves no
        effect, the others of the call stay). If it raises, the batch is undone and runs again with that run of
        commands handled one per call, so only the command that raises fails."""

        def register(handler: BatchHandler[C]) -> BatchHandler[C]:
            async def one(tx: LocalTransaction, cmd: C) -> Reply:
                batch = BatchTransaction(
                    connection=tx.connection, sql=tx.sql, envelopes=(tx.envelope,), settings=tx.settings
                )
                (reply,) = await handler(batch, (cmd,))
                return reply

            self._register(command, one)
            self._batch_handlers[command.type_name()] = handler
            return handler

        return register

    def _register(self, command: type[Command], handler: Handler[Any]) -> None:
        name = command.type_name()
        if name in self._handlers:
            raise ValueError(f"{self.name}: two handlers for {name}")
        self._handlers[name] = handler

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def processor(
        self, db: AsyncEngine, settings: Settings, *, publish: Publish | None, batches: BatchConnection | None = None
    ) -> CommandProcessor:
        """``batches``: the connection batches run on (the host's kept one); without it, one checked out each."""
        return CommandProcessor(self, db, settings, publish=publish, batches=batches)

    def spec(self, settings: Settings) -> ServiceSpec:
        def make_processor(batches: BatchConnection, publish: Publish) -> BatchProcessor:
            return self.processor(batches.engine, settings, publish=publish, batches=batches).process_batch

        return ServiceSpec(
            name=self.name,
            outbox=self.outbox,
            topics=[settings.topics.commands(self.name)],
            make_processor=make_processor,
        )


class CommandProcessor:
    """Executes a batch of commands in one transaction, in order. A handler that refuses (a failure reply) or
    raises must leave no effects: rather than a savepoint around every handler (two round trips each), the
    transaction is rolled back and the batch runs again with that command's reply remembered, so the handler
    is not run twice for it (the others of the batch are). A duplicate is answered with the stored reply, and
    its effects never stay. Retryable failures are not stored (their inbox claim is given back), so a retry of
    the same message id runs the handler again.

    Duplicates are rare (redeliveries after a crash or a rebalance), so a batch is first handled as if all of
    it were new and claimed at the end, with its replies and outbox rows, in one statement; a claim that fails
    undoes the batch (a duplicate's handler did run once more, in the pass rolled back), and it runs again
    claiming first, as do the batches after it until one has no duplicate.

    Consecutive commands of a ``handles_batch`` handler are one call of it; its refusals undo nothing (it
    decided before writing), and a call that raises undoes the batch, which runs again with those commands one
    per call."""

    def __init__(
        self,
        participant: Participant,
        db: AsyncEngine,
        settings: Settings,
        *,
        publish: Publish | None,
        batches: BatchConnection | None = None,
    ) -> None:
        self._p = participant
        self._connections = batches or BatchConnection(db)
        self._settings = settings
        self._publish = publish
        self._expect_duplicates = False

    async def process_batch(self, batch: Sequence[Incoming]) -> list[Rejected | None]:
        outcomes: list[Rejected | None] = [None] * len(batch)
        accepted: list[tuple[Incoming, Handler[Any], Command]] = []
        for index, incoming in enumerate(batch):
            try:
                accepted.append((incoming, *self._route(incoming)))
            except Rejected as exc:
                outcomes[index] = exc
        if accepted:
            failed: dict[int, Reply] = {}  # position in ``accepted`` → the failure reply its handler gave
            singles: set[int] = set()  # positions a batch handler takes one per call (its run of commands raised)
            ids = [incoming.envelope.message_id for incoming, _, _ in accepted]
            claim_first = self._expect_duplicates or len(set(ids)) < len(ids)
            inline = self._publish is not None
            while True:
                try:
                    # A Core connection, not an ORM session: the session cost ~0.5 ms of Python CPU per batch.
                    async with self._connections.use() as connection, connection.begin():
                        work = _Batch(self, connection, failed, singles)
                        if claim_first:
                            written = await work.run(accepted, inline=inline)
                            self._expect_duplicates = work.duplicates > 0
                        else:
                            written = await work.run_as_new(accepted, inline=inline)
                    break
                except _Duplicates:
                    self._expect_duplicates = claim_first = True
                except _UndoBatch:
                    claim_first = True  # the rerun knows the failed replies by position, duplicates or not
            if self._publish is not None:
                self._publish(written)
        return outcomes

    def _route(self, incoming: Incoming) -> tuple[Handler[Any], Command]:
        command = incoming.message
        handler = self._p._handlers.get(command.type_name())  # noqa: SLF001 - the kit's own registry
        if not isinstance(command, Command) or handler is None:
            raise Rejected("unknown-command", f"{self._p.name} does not handle {command.type_name()}")
        if incoming.envelope.saga_id is None:
            raise Rejected("bad-envelope", "a command must carry sagaline-saga-id")
        return handler, command

    async def _run_handler(
        self,
        connection: AsyncConnection,
        sql: Sql,
        envelope: Envelope,
        handler: Handler[Any],
        command: Command,
    ) -> Reply:
        tx = LocalTransaction(connection=connection, sql=sql, envelope=envelope, settings=self._settings)
        try:
            return await handler(tx, command)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("%s handler for %s raised", self._p.name, command.type_name())
            return CommandFailed(reason=f"{type(exc).__name__}: {exc}", retryable=True, error_type="handler-error")

    def _reply_record(self, incoming: Incoming, reply: Reply, *, retryable: bool) -> OutboxRecord:
        command = incoming.envelope
        suffix = f"reply/{command.attempt}" if retryable else "reply"
        envelope = Envelope(
            message_id=name_based_id(f"{command.message_id}/{suffix}", REPLY_ID_NAMESPACE),
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


class _Batch:
    """One batch's transaction: bulk inbox claim, the handlers in order, then bulk reply storage, claim
    release and outbox insert. Commands of one saga keep their order; a message id seen twice in the batch
    behaves as if the two had arrived in two transactions."""

    def __init__(
        self, processor: CommandProcessor, connection: AsyncConnection, failed: dict[int, Reply], singles: set[int]
    ) -> None:
        self._proc = processor
        self._failed = failed
        self._singles = singles
        self._p = processor._p  # noqa: SLF001 - the processor's own helper
        self._connection = connection
        self._sql = Sql(connection)
        self._claimed: set[str] = set()
        self._stored: dict[str, StoredReply] = {}  # definitive replies: in the inbox, or stored by this batch
        self._to_store: dict[str, StoredReply] = {}
        self._to_release: set[str] = set()
        self._records: list[OutboxRecord] = []
        self.duplicates = 0

    async def run_as_new(self, accepted: Sequence[tuple[Incoming, Handler[Any], Command]], *, inline: bool) -> Written:
        """Every command handled as if first seen; the claims are made at the end, with the replies and the
        outbox rows (sorted, so two transactions claiming the same ids wait rather than deadlock)."""
        p = self._p
        await self._handle_all(accepted, claim=False)
        answered = sorted(self._to_store.items(), key=lambda item: item[0])
        claimed, written = await claim_answered(
            self._connection, p.inbox, p.outbox, p.name, answered, self._records, inline=inline
        )
        if claimed < len(answered):
            raise _Duplicates
        return written

    async def run(self, accepted: Sequence[tuple[Incoming, Handler[Any], Command]], *, inline: bool) -> Written:
        p, connection = self._p, self._connection
        ids = [incoming.envelope.message_id for incoming, _, _ in accepted]
        self._claimed = await claim_inbox_many(connection, p.inbox, p.name, ids)
        self._stored = await stored_replies(connection, p.inbox, p.name, set(ids) - self._claimed)
        await self._handle_all(accepted, claim=True)
        await release_inbox(connection, p.inbox, p.name, self._to_release)
        await store_replies(connection, p.inbox, p.name, self._to_store.items())
        return await write_outbox(connection, p.outbox, self._records, inline=inline)

    async def _handle_all(self, accepted: Sequence[tuple[Incoming, Handler[Any], Command]], *, claim: bool) -> None:
        """Every command in order (``claim``: each claimed first): those of ``handles`` one per call, runs of
        consecutive commands of one ``handles_batch`` handler in one call. A run ends before a message id it
        holds already, so that copy is claimed after the first was answered, as if in a later transaction."""
        run = _Run()
        for position, (incoming, handler, command) in enumerate(accepted):
            batch_handler = self._batch_handler(position, command)
            if run.positions and not run.takes(batch_handler, incoming):
                await self._handle_run(run, accepted)
                run = _Run()
            with telemetry.handling(incoming.span):
                if claim and not self._claim(incoming):
                    continue
                if batch_handler is None:
                    await self._handle(position, incoming, handler, command)
                    continue
            run.add(position, batch_handler, incoming)
        if run.positions:
            await self._handle_run(run, accepted)

    def _batch_handler(self, position: int, command: Command) -> BatchHandler[Any] | None:
        """The batch handler for this command, unless it is to be handled alone: its failure is remembered from
        an undone pass, or its run raised."""
        if position in self._failed or position in self._singles:
            return None
        return self._p._batch_handlers.get(command.type_name())  # noqa: SLF001 - the kit's own registry

    async def _handle_run(self, run: _Run, accepted: Sequence[tuple[Incoming, Handler[Any], Command]]) -> None:
        """One call of a batch handler; its failure replies are answered as given (it wrote nothing for them).
        If it raises, the batch is undone and runs again with these commands one per call."""
        assert run.handler is not None
        incomings = [accepted[position][0] for position in run.positions]
        tx = BatchTransaction(
            connection=self._connection,
            sql=self._sql,
            envelopes=[incoming.envelope for incoming in incomings],
            settings=self._proc._settings,  # noqa: SLF001
        )
        with telemetry.local_transactions(self._p.name, incomings):
            try:
                replies = _one_each(
                    await run.handler(tx, [accepted[position][2] for position in run.positions]), incomings
                )
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("%s batch handler raised; its %d commands run one per call", self._p.name, len(incomings))
                self._singles.update(run.positions)
                raise _UndoBatch from exc
        for incoming, reply in zip(incomings, replies, strict=True):
            with telemetry.handling(incoming.span):
                self._answer(incoming, reply)

    async def _handle(self, position: int, incoming: Incoming, handler: Handler[Any], command: Command) -> None:
        """Run the handler, unless an undone pass remembered its failure reply; a new failure undoes the batch."""
        reply = self._failed.get(position)
        if reply is None:
            with telemetry.local_transaction(self._p.name, incoming):
                reply = await self._proc._run_handler(  # noqa: SLF001
                    self._connection, self._sql, incoming.envelope, handler, command
                )
            if isinstance(reply, FailureReply):
                self._failed[position] = reply
                raise _UndoBatch
        self._answer(incoming, reply)

    def _claim(self, incoming: Incoming) -> bool:
        """Whether the command is to be handled here; a duplicate is answered from its stored reply instead."""
        message_id = incoming.envelope.message_id
        if message_id in self._claimed:
            self._claimed.discard(message_id)
        elif message_id in self._to_release:  # an earlier copy in this batch failed retryably: run it again
            self._to_release.discard(message_id)
        else:
            self.duplicates += 1
            self._answer_duplicate(incoming)
            return False
        return True

    def _answer(self, incoming: Incoming, reply: Reply) -> None:
        message_id = incoming.envelope.message_id
        if isinstance(reply, FailureReply) and reply.retryable:
            self._to_release.add(message_id)
            self._records.append(self._proc._reply_record(incoming, reply, retryable=True))  # noqa: SLF001
            return
        record = self._proc._reply_record(incoming, reply, retryable=False)  # noqa: SLF001
        stored = StoredReply(topic=record.topic, headers=dict(record.headers), payload=dict(record.payload))
        self._stored[message_id] = self._to_store[message_id] = stored
        self._records.append(record)

    def _answer_duplicate(self, incoming: Incoming) -> None:
        telemetry.inbox_duplicate(self._p.name)
        stored = self._stored.get(incoming.envelope.message_id)
        if stored is None:
            return
        log.info("duplicate command %s answered from its stored reply", incoming.envelope.message_id)
        headers = {**stored.headers, **telemetry.trace_headers(incoming.trace_headers)}
        headers[header_name("attempt")] = str(incoming.envelope.attempt)
        self._records.append(
            OutboxRecord(topic=stored.topic, key=incoming.envelope.saga_id, headers=headers, payload=stored.payload)
        )


def _one_each(replies: Sequence[Reply], incomings: Sequence[Incoming]) -> list[Reply]:
    if len(replies) != len(incomings):
        raise RuntimeError(f"a batch handler gave {len(replies)} replies to {len(incomings)} commands")
    return list(replies)


class _Run:
    """Consecutive commands of one batch handler, gathered for one call."""

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.handler: BatchHandler[Any] | None = None
        self._ids: set[str] = set()

    def takes(self, handler: BatchHandler[Any] | None, incoming: Incoming) -> bool:
        return handler is self.handler and incoming.envelope.message_id not in self._ids

    def add(self, position: int, handler: BatchHandler[Any], incoming: Incoming) -> None:
        self.positions.append(position)
        self.handler = handler
        self._ids.add(incoming.envelope.message_id)
