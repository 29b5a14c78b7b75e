"""``sagaline saga as-of | why | verify | rebuild | diagram``: reading history, diagnosing, drawing."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.admin import AdminService, DiagramFormat, RendererMissingError, VerifyReport, to_html, to_svg
from orchestrator.cli._admin import err, parse_time, with_service
from orchestrator.cli._common import print_json
from orchestrator.cli._sagas import JsonFlag, app, console, print_as_of


@app.command("as-of")
def as_of(
    saga_id: str,
    at: Annotated[str, typer.Argument(help="ISO 8601 time with a zone, e.g. 2026-11-24T10:15:00Z")],
    as_json: JsonFlag = False,
) -> None:
    """A saga's state as it was at a given time, from its history (same as `show --as-of`)."""
    moment = parse_time(at)
    print_as_of(with_service(lambda s: s.as_of(saga_id, moment), as_json=as_json), as_json=as_json)


@app.command("why")
def why(
    saga_id: str,
    no_dlq: Annotated[bool, typer.Option("--no-dlq", help="Do not scan the dead-letter topic.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Why a saga is not moving: what it waits for since when, its deadline, attempts, last error, dead letters."""
    diagnosis = with_service(lambda s: s.why(saga_id, dead_letters=not no_dlq), as_json=as_json)
    if as_json:
        print_json(asdict(diagnosis))
        return
    colour = "green" if diagnosis.moving else "yellow"
    console.print(f"[bold]{saga_id}[/] is [bold]{diagnosis.status}[/]: [{colour}]{diagnosis.summary}[/]")
    for line in diagnosis.details:
        console.print(f"  {line}")
    for line in diagnosis.suggestions:
        console.print(f"  → {line}")


@app.command("verify")
def verify(
    saga_id: Annotated[str | None, typer.Argument(help="One saga; or --all.")] = None,
    all_sagas: Annotated[bool, typer.Option("--all", help="Every saga in the database.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild state from history events alone and compare with the stored state; exit 1 on any divergence."""
    if (saga_id is None) == (not all_sagas):
        raise typer.BadParameter("give one saga id, or --all")

    async def go(service: AdminService) -> VerifyReport:
        if saga_id is not None:
            result = await service.verify(saga_id)
            return VerifyReport(checked=1, divergent=[] if result.matches else [result])
        return await service.verify_all(on_progress=lambda n: err.print(f"verified {n} sagas", highlight=False))

    report = with_service(go, as_json=as_json)
    if as_json:
        print_json({"checked": report.checked, "ok": report.ok, "divergent": [asdict(d) for d in report.divergent]})
    elif report.ok:
        console.print(f"{report.checked} saga(s) rebuilt from their history: identical to the stored state")
    else:
        console.print(f"[red]{len(report.divergent)} of {report.checked} saga(s) diverge from their history:[/]")
        for item in report.divergent:
            console.print(f"  {item.saga_id}: {item.error or ', '.join(item.differences)}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("rebuild")
def rebuild(saga_id: str, as_json: JsonFlag = False) -> None:
    """Replay one saga's recorded inputs through the engine and compare with its stored state."""
    result = with_service(lambda s: s.verify(saga_id), as_json=as_json)
    if as_json:
        print_json(asdict(result))
    elif result.matches:
        console.print(f"saga {saga_id}: rebuilt from {result.events} events, identical to the stored state")
    else:
        console.print(f"[red]saga {saga_id}: rebuild differs[/]: {result.error or ', '.join(result.differences)}")
    if not result.matches:
        raise typer.Exit(1)


def render(mermaid: str, fmt: DiagramFormat, title: str) -> str:
    """Mermaid text as asked; SVG falls back to Mermaid text (with a warning) where no renderer is installed."""
    if fmt is DiagramFormat.HTML:
        return to_html(mermaid, title)
    if fmt is DiagramFormat.SVG:
        try:
            return to_svg(mermaid)
        except RendererMissingError as exc:
            err.print(f"[yellow]{exc}; writing Mermaid text instead[/]")
    return mermaid


@app.command("diagram")
def diagram(
    saga_type: Annotated[str, typer.Argument(help="Saga definition name.")] = "order_fulfillment",
    saga: Annotated[str | None, typer.Option("--saga", help="Highlight the path this saga took.")] = None,
    version: Annotated[int | None, typer.Option(help="Definition version (default: latest, or the saga's).")] = None,
    fmt: Annotated[DiagramFormat, typer.Option("--format", help="mermaid, html or svg.")] = DiagramFormat.MERMAID,
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """The definition's state diagram; with --saga, the path that instance took highlighted."""
    text = with_service(lambda s: s.diagram(saga_type, version=version, saga_id=saga))  # no database without --saga
    title = f"{saga_type}" + (f": saga {saga}" if saga else "")
    rendered = render(text, fmt, title)
    if output is None:
        typer.echo(rendered, nl=False)
    else:
        output.write_text(rendered)
        typer.echo(f"wrote {output}")
