"""Build-time checks of a saga definition. Each rule says what to fix."""

from __future__ import annotations

import re
from typing import Any

from contracts import REGISTRY, Command, FailureReply, Message, SuccessReply
from orchestrator.definition._dsl import SagaDefinition, Step
from orchestrator.definition._errors import InvalidSagaDefinition
from orchestrator.definition._machine import compile_machine

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*\Z")  # \Z, not $: "$" also matches before a trailing newline


def validate(definition: SagaDefinition[Any]) -> None:
    problems = _definition_problems(definition)
    seen: set[str] = set()
    for position, step in enumerate(definition.steps):
        if step.name in seen:
            problems.append(f"step name {step.name!r} is used twice; give each step a unique name")
        seen.add(step.name)
        problems += _step_problems(step)
        is_last = position == len(definition.steps) - 1
        if step.compensation is None and not is_last:
            later = definition.steps[position + 1].name
            problems.append(
                f"step {step.name!r} has no compensation but step {later!r} after it can fail; "
                "add compensation=Compensation(...) or make it the last step",
            )
    if not problems:
        problems += compile_machine(definition).problems()
    if problems:
        raise InvalidSagaDefinition(definition.name, problems)


def _definition_problems(definition: SagaDefinition[Any]) -> list[str]:
    found: list[str] = []
    if not _IDENTIFIER.match(definition.name):
        found.append(f"saga name {definition.name!r} must be snake_case (letters, digits, _)")
    if definition.version < 1:
        found.append("version must be >= 1")
    if not definition.steps:
        found.append("a saga needs at least one step; add .step(...) before .build()")
    if definition.time_to_live.total_seconds() <= 0:
        found.append("time_to_live must be positive")
    found += _known(definition.start, "start command")
    return found


def _step_problems(step: Step[Any]) -> list[str]:
    where = f"step {step.name!r}"
    found: list[str] = []
    if not _IDENTIFIER.match(step.name):
        found.append(f"{where}: name must be snake_case (letters, digits, _)")
    if not _IDENTIFIER.match(step.participant):
        found.append(f"{where}: participant {step.participant!r} must be snake_case")
    found += _kinds(where, step.command, step.replies, step.failures)
    if step.timeout.total_seconds() <= 0:
        found.append(f"{where}: timeout must be positive")
    found += [f"{where}: retry policy: {p}" for p in step.retry.problems()]
    if step.when is not None and not step.when_label:
        found.append(f"{where}: a guard (when=) needs when_label= so diagrams can show it")
    if step.compensation is not None:
        comp = step.compensation
        found += _kinds(f"{where} compensation", comp.command, comp.replies, comp.failures)
        if comp.timeout.total_seconds() <= 0:
            found.append(f"{where} compensation: timeout must be positive")
        found += [f"{where} compensation: retry policy: {p}" for p in comp.retry.problems()]
    return found


def _kinds(
    where: str,
    command: type[Any],
    replies: tuple[type[Any], ...],
    failures: tuple[type[Any], ...],
) -> list[str]:
    found: list[str] = []
    if not (isinstance(command, type) and issubclass(command, Command)):
        found.append(f"{where}: command {command!r} must be a contracts.Command subclass")
    else:
        found += _known(command, where)
    if not replies:
        found.append(f"{where}: declare at least one success reply type (replies=(...,))")
    for reply in replies:
        if not (isinstance(reply, type) and issubclass(reply, SuccessReply)):
            found.append(f"{where}: reply {reply!r} must be a contracts.SuccessReply subclass")
        else:
            found += _known(reply, where)
    for failure in failures:
        if not (isinstance(failure, type) and issubclass(failure, FailureReply)):
            found.append(f"{where}: failure {failure!r} must be a contracts.FailureReply subclass")
        else:
            found += _known(failure, where)
    return found


def _known(model: type[Message], where: str) -> list[str]:
    name = model.type_name()
    if name not in REGISTRY or REGISTRY.model(name) is not model:
        return [f"{where}: message type {name!r} is not in the contracts registry; add it to contracts"]
    return []
