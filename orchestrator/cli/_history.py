"""``sagaline saga as-of`` and ``sagaline saga rebuild``: reading the append-only history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from orchestrator.cli._common import print_json
from orchestrator.cli._sagas import JsonFlag, app, console, load_or_exit
from orchestrator.persistence import snapshot, state_from_row
from orchestrator.runtime import RebuildError, rebuild, state_as_of
from orchestrator.sagas import DEFINITIONS


def _parse_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-24T10:15:00+00:00") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2026-11-24T10:15:00Z or …+01:00")
    return moment


@app.command("as-of")
def as_of(
    saga_id: str,
    at: Annotated[str, typer.Argument(help="ISO 8601 time with a zone, e.g. 2026-11-24T10:15:00Z")],
    as_json: JsonFlag = False,
) -> None:
    """A saga's state as it was at a given time, from its history."""
    moment = _parse_time(at)
    _row, events = load_or_exit(saga_id)
    state = state_as_of(events, moment)
    if as_json:
        print_json({"saga_id": saga_id, "at": moment, "state": state})
    elif state is None:
        console.print(f"saga {saga_id} did not exist yet at {moment.isoformat()}")
    else:
        console.print(f"saga {saga_id} at {moment.isoformat()}: [bold]{state['status']}[/] step={state['step']}")
        console.print(f"  completed={state['completed_steps']} to_compensate={state['to_compensate']}")


@app.command("rebuild")
def rebuild_command(saga_id: str, as_json: JsonFlag = False) -> None:
    """Replay the saga's recorded inputs through the engine and compare with its stored state."""
    row, events = load_or_exit(saga_id)
    stored = snapshot(state_from_row(row))
    result: dict[str, Any] = {"saga_id": saga_id, "events": len(events)}
    try:
        rebuilt = rebuild(DEFINITIONS[row["saga_type"]], saga_id, events)
    except RebuildError as exc:
        result |= {"matches": False, "error": str(exc)}
    else:
        differences = sorted(k for k in stored if stored[k] != rebuilt.get(k))
        result |= {"matches": not differences, "differences": differences}
    if as_json:
        print_json(result)
    elif result["matches"]:
        console.print(f"saga {saga_id}: rebuilt from {len(events)} events, identical to the stored state")
    else:
        console.print(f"[red]saga {saga_id}: rebuild differs[/]: {result.get('error') or result['differences']}")
    if not result["matches"]:
        raise typer.Exit(1)
