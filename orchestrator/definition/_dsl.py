"""The saga DSL: a definition is a list of steps, each a command to one participant with its compensation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from contracts import Command, FailureReply, StartCommand, SuccessReply
from orchestrator.definition._retry import COMPENSATION_RETRY, DEFAULT_RETRY, RetryPolicy

StartT = TypeVar("StartT", bound=StartCommand)

# How long a step waits for its reply before resending. Generous on purpose: under a burst, commands queue
# behind each other, and every timeout spends one of the step's attempts.
DEFAULT_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True, kw_only=True)
class SagaContext(Generic[StartT]):
    """What a command builder or guard sees: the start command and the replies of completed steps."""

    input: StartT
    results: Mapping[str, Mapping[str, Any]]


CommandBuilder = Callable[[SagaContext[StartT]], Command]
Guard = Callable[[SagaContext[StartT]], bool]


@dataclass(frozen=True, kw_only=True)
class Compensation(Generic[StartT]):
    """The command that semantically undoes a step. It must be idempotent and tolerate
    "nothing to undo" (the forward command may never have arrived)."""

    command: type[Command]
    build: CommandBuilder[StartT]
    replies: tuple[type[SuccessReply], ...]
    failures: tuple[type[FailureReply], ...] = ()
    retry: RetryPolicy = COMPENSATION_RETRY
    timeout: timedelta = DEFAULT_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class Step(Generic[StartT]):
    """One local transaction in one participant."""

    name: str
    participant: str
    command: type[Command]
    build: CommandBuilder[StartT]
    replies: tuple[type[SuccessReply], ...]
    failures: tuple[type[FailureReply], ...] = ()
    compensation: Compensation[StartT] | None = None
    retry: RetryPolicy = DEFAULT_RETRY
    timeout: timedelta = DEFAULT_TIMEOUT
    when: Guard[StartT] | None = None
    when_label: str | None = None


STARTS_KEPT = 4096  # validated start commands a definition keeps (more than the sagas one orchestrator has in flight)


@dataclass(frozen=True, kw_only=True)
class SagaDefinition(Generic[StartT]):
    """A validated saga: build it with :func:`saga` … ``.build()``, never directly."""

    name: str
    version: int
    start: type[StartT]
    steps: tuple[Step[StartT], ...]
    time_to_live: timedelta
    saga_id_of: Callable[[StartT], str | None]
    _index: Mapping[str, int] = field(default_factory=dict, repr=False)
    # Validated start commands by saga id, with the input they came from: a saga's input never changes, and
    # validating it again for every transition was 5 % of the orchestrator's profile. Equal input, same command.
    _starts: dict[str, tuple[Mapping[str, Any], StartT]] = field(default_factory=dict, repr=False, compare=False)

    def step(self, name: str) -> Step[StartT]:
        return self.steps[self._index[name]]

    def position(self, name: str) -> int:
        return self._index[name]

    def context(
        self, data: Mapping[str, Any], *, start: StartT | None = None, saga_id: str | None = None
    ) -> SagaContext[StartT]:
        """``start``: the start command already validated from ``data["input"]`` (it never changes);
        ``saga_id``: whose input it is, to reuse the command validated for an earlier transition."""
        started = start if start is not None else self._start_from(data["input"], saga_id)
        return SagaContext(input=started, results=data.get("results", {}))

    def remember_start(self, saga_id: str, raw: Mapping[str, Any], start: StartT) -> None:
        """Keep ``start`` (validated from ``raw``) for the saga's later transitions."""
        if len(self._starts) >= STARTS_KEPT:
            del self._starts[next(iter(self._starts))]  # the oldest: sagas in flight are the recent ones
        self._starts[saga_id] = (raw, start)

    def _start_from(self, raw: Mapping[str, Any], saga_id: str | None) -> StartT:
        kept = self._starts.get(saga_id) if saga_id is not None else None
        if kept is not None and kept[0] == raw:
            return kept[1]
        start = self.start.model_validate(raw)
        if saga_id is not None:
            self.remember_start(saga_id, raw, start)
        return start


class SagaBuilder(Generic[StartT]):
    """Fluent builder; ``build()`` validates and raises ``InvalidSagaDefinition`` listing every problem."""

    def __init__(
        self,
        name: str,
        *,
        start: type[StartT],
        version: int = 1,
        time_to_live: timedelta = timedelta(minutes=10),
        saga_id_of: Callable[[StartT], str | None] | None = None,
    ) -> None:
        self._name = name
        self._start = start
        self._version = version
        self._ttl = time_to_live
        self._saga_id_of: Callable[[StartT], str | None] = saga_id_of or (lambda _start: None)
        self._steps: list[Step[StartT]] = []

    def step(  # noqa: PLR0913 - a step has this many declared parts
        self,
        name: str,
        *,
        participant: str,
        command: type[Command],
        build: CommandBuilder[StartT],
        replies: tuple[type[SuccessReply], ...],
        failures: tuple[type[FailureReply], ...] = (),
        compensation: Compensation[StartT] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: timedelta = DEFAULT_TIMEOUT,
        when: Guard[StartT] | None = None,
        when_label: str | None = None,
    ) -> SagaBuilder[StartT]:
        self._steps.append(
            Step(
                name=name,
                participant=participant,
                command=command,
                build=build,
                replies=replies,
                failures=failures,
                compensation=compensation,
                retry=retry,
                timeout=timeout,
                when=when,
                when_label=when_label,
            ),
        )
        return self

    def build(self) -> SagaDefinition[StartT]:
        from orchestrator.definition._validate import validate  # noqa: PLC0415 - validate imports this module

        definition = SagaDefinition(
            name=self._name,
            version=self._version,
            start=self._start,
            steps=tuple(self._steps),
            time_to_live=self._ttl,
            saga_id_of=self._saga_id_of,
            _index={s.name: i for i, s in enumerate(self._steps)},
        )
        validate(definition)
        return definition


def saga(
    name: str,
    *,
    start: type[StartT],
    version: int = 1,
    time_to_live: timedelta = timedelta(minutes=10),
    saga_id_of: Callable[[StartT], str | None] | None = None,
) -> SagaBuilder[StartT]:
    """Begin a saga definition: ``saga("order_fulfillment", start=PlaceOrder).step(...).build()``."""
    return SagaBuilder(name, start=start, version=version, time_to_live=time_to_live, saga_id_of=saga_id_of)
