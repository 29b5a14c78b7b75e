"""Running an operator command: the admin service from the environment, and errors as clear exits."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import NoReturn, TypeVar

import typer
from rich.console import Console

from orchestrator.admin import AdminService, BadQueryError
from orchestrator.cli._common import print_json, run, settings
from orchestrator.definition import DefinitionError
from orchestrator.runtime import OperationRefusedError, SagaNotFoundError
from orchestrator.sagas import load_registry

T = TypeVar("T")

EXIT_NOT_FOUND = 1
EXIT_REFUSED = 3
EXIT_BAD_INPUT = 2

err = Console(stderr=True, soft_wrap=True)


def default_actor() -> str:
    """Who is at the keyboard, as recorded in the saga's history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def with_service(use: Callable[[AdminService], Awaitable[T]], *, as_json: bool = False) -> T:
    """Run ``use`` against a service built from the environment; turn known errors into exits with a message
    (and, with ``--json``, one JSON object with an ``error`` field)."""

    async def go() -> T:
        config = settings()
        service = AdminService(config, load_registry(config.saga_definitions))
        try:
            return await use(service)
        finally:
            await service.close()

    try:
        return run(go())
    except SagaNotFoundError as exc:
        _fail(f"no saga {exc.args[0]!r}", EXIT_NOT_FOUND, as_json, saga_id=exc.args[0])
    except OperationRefusedError as exc:
        _fail(str(exc), EXIT_REFUSED, as_json, verb=exc.verb.value, status=exc.status.value, changed=False)
    except (BadQueryError, DefinitionError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT, as_json)


def _fail(message: str, code: int, as_json: bool, **fields: object) -> NoReturn:
    if as_json:
        print_json({**fields, "error": message})
    else:
        err.print(f"[red]{message}[/]")
    raise typer.Exit(code)


def parse_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-24T10:15:00+00:00") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2026-11-24T10:15:00Z or …+01:00")
    return moment
