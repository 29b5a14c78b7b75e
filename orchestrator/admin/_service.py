"""The operator's verbs, once, for both the CLI and the HTTP admin API: list, show, history, as-of, why,
retry, resume, cancel, compensate, verify, diagram."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator import telemetry
from orchestrator.admin._diagram import path_of
from orchestrator.admin._queries import Page, SagaFilter, list_sagas, load_saga, saga_page
from orchestrator.admin._verify import Verification, verify
from orchestrator.admin._why import Diagnosis, explain, last_error
from orchestrator.definition import DefinitionRegistry, OperatorVerb, UnknownDefinition, to_mermaid
from orchestrator.messaging import describe_dead_letter, scan_topic
from orchestrator.persistence import create_engine
from orchestrator.runtime import SagaManager, SagaNotFoundError, state_as_of, utc_now
from orchestrator.settings import Settings

DEAD_LETTER_SCAN_S = 10.0


@dataclass(frozen=True, kw_only=True)
class OperationResult:
    saga_id: str
    verb: str
    status: str
    step: str | None
    changed: bool
    actor: str
    reason: str


@dataclass(kw_only=True)
class VerifyReport:
    checked: int = 0
    divergent: list[Verification] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.divergent


class AdminService:
    """Holds one database engine; ``close()`` it when done. Raises ``SagaNotFoundError`` for unknown ids,
    ``OperationRefusedError`` for a verb that does not apply, ``UnknownDefinition`` for unknown saga types."""

    def __init__(
        self,
        settings: Settings,
        registry: DefinitionRegistry,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._clock = clock
        self._db = create_engine(settings.database_url, pool_size=2)
        self._manager = SagaManager(self._db, settings, registry, clock=clock)

    @property
    def registry(self) -> DefinitionRegistry:
        return self._registry

    async def close(self) -> None:
        await self._db.dispose()

    async def list_sagas(self, where: SagaFilter, *, limit: int = 50, cursor: str | None = None) -> Page:
        async with self._db.connect() as conn:
            return await list_sagas(conn, where, now=self._clock(), limit=limit, cursor=cursor)

    async def load(self, saga_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with self._db.connect() as conn:
            row, events = await load_saga(conn, saga_id)
        if row is None:
            raise SagaNotFoundError(saga_id)
        return row, events

    async def show(self, saga_id: str) -> dict[str, Any]:
        """The saga's state, data, current step, deadline, attempts, last error, trace id, and its history."""
        row, events = await self.load(saga_id)
        saga = {**row, "last_error": last_error(events), "trace_id": telemetry.trace_id_of(row["trace_context"])}
        return {"saga": saga, "history": events}

    async def as_of(self, saga_id: str, at: datetime) -> dict[str, Any]:
        """The state rebuilt from history as it was at ``at`` (``state`` is None if the saga did not exist)."""
        _row, events = await self.load(saga_id)
        return {"saga_id": saga_id, "as_of": at, "state": state_as_of(events, at)}

    async def history(self, saga_id: str) -> list[dict[str, Any]]:
        return (await self.load(saga_id))[1]

    async def why(self, saga_id: str, *, dead_letters: bool = True) -> Diagnosis:
        row, events = await self.load(saga_id)
        found: list[dict[str, Any]] = []
        problem: str | None = None
        if dead_letters:
            try:
                found, problem = await self._dead_letters_of(saga_id)
            except Exception as exc:  # the diagnosis is still useful without the DLQ
                problem = f"not checked: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
        else:
            problem = "not checked: skipped"
        try:
            definition = self._registry.get(row["saga_type"], row["definition_version"])
        except UnknownDefinition:
            definition = None
        return explain(
            row,
            events,
            now=self._clock(),
            definition=definition,
            dead_letters=found,
            dead_letters_error=problem,
        )

    async def _dead_letters_of(self, saga_id: str) -> tuple[list[dict[str, Any]], str | None]:
        """The dead letters that concern the saga (by its id in the key or the saga-id header), and what was not
        checked: the DLQ is streamed, not held, and read for at most ``DEAD_LETTER_SCAN_S``."""

        found: list[dict[str, Any]] = []

        def concerns_saga(record: Any) -> bool:
            described = describe_dead_letter(record)
            if saga_id not in {described["saga_id"], described["key"]}:
                return False
            found.append(described)
            return True

        scan = await scan_topic(
            self._settings.kafka_bootstrap_servers,
            self._settings.topics.dlq,
            concerns_saga,
            timeout_s=DEAD_LETTER_SCAN_S,
        )
        unchecked = None
        if not scan.complete:
            unchecked = f"checked only in part: {scan.scanned} read in {DEAD_LETTER_SCAN_S:g} s, the rest not read"
        return found, unchecked

    async def operate(self, verb: OperatorVerb, saga_id: str, *, reason: str, actor: str) -> OperationResult:
        actions = await self._manager.operate(verb, saga_id, reason=reason, actor=actor)
        state = actions.state
        return OperationResult(
            saga_id=saga_id,
            verb=verb.value,
            status=state.status.value,
            step=state.step,
            changed=not actions.ignored,
            actor=actor,
            reason=reason,
        )

    async def verify(self, saga_id: str) -> Verification:
        row, events = await self.load(saga_id)
        return verify(self._registry, row, events)

    async def verify_all(
        self,
        *,
        page_size: int = 500,
        on_progress: Callable[[int], None] = lambda _checked: None,
    ) -> VerifyReport:
        report = VerifyReport()
        after: str | None = None
        while True:
            async with self._db.connect() as conn:
                page = await saga_page(conn, after=after, limit=page_size)
            for row, events in page:
                result = verify(self._registry, row, events)
                report.checked += 1
                if not result.matches:
                    report.divergent.append(result)
            on_progress(report.checked)
            if len(page) < page_size:
                return report
            after = page[-1][0]["id"]

    async def diagram(self, saga_type: str, *, version: int | None = None, saga_id: str | None = None) -> str:
        """The definition's Mermaid state diagram; with ``saga_id``, that saga's path highlighted on the
        version it runs on."""
        path: list[str] = []
        if saga_id is not None:
            row, events = await self.load(saga_id)
            if row["saga_type"] != saga_type:
                raise UnknownDefinition(f"saga {saga_id} is a {row['saga_type']}, not a {saga_type}")
            version = row["definition_version"] if version is None else version
            path = path_of(events)
        definition = self._registry.latest(saga_type) if version is None else self._registry.get(saga_type, version)
        return to_mermaid(definition, path)
