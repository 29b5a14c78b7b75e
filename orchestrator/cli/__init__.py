"""The ``sagaline`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from contracts import json_schemas
from orchestrator.cli import _api, _demo, _dlq, _inspect, _sagas
from orchestrator.cli._common import configure_logging, print_json, run, settings

app = typer.Typer(
    help="Sagaline: declared sagas over Kafka and Postgres, with outbox, inbox and compensation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(_sagas.app, name="saga")
app.command("demo")(_demo.demo)
app.add_typer(_dlq.app, name="dlq")
app.add_typer(_api.app, name="admin")
contracts_app = typer.Typer(help="Message contracts.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")


@app.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision for upgrade.")] = "head",
    downgrade: Annotated[str | None, typer.Option(help="Downgrade to this revision instead (e.g. base).")] = None,
) -> None:
    """Upgrade (or downgrade) the database schema of every service."""
    from orchestrator import migrate as migrations  # noqa: PLC0415 - alembic is slow to import

    url = settings().database_url
    if downgrade is not None:
        migrations.downgrade(url, downgrade)
        typer.echo(f"downgraded to {downgrade}")
    else:
        migrations.upgrade(url, revision)
        typer.echo(f"upgraded to {revision}")


@app.command()
def orchestrator() -> None:
    """Run the orchestrator service (consumes saga.start and saga.replies, relays, sweeps deadlines)."""
    from orchestrator.runtime import run_orchestrator  # noqa: PLC0415

    config = settings()
    configure_logging("orchestrator", config.log_level)
    run(run_orchestrator(config))


@app.command()
def participant(name: Annotated[str, typer.Argument(help="order, inventory, payment or shipment")]) -> None:
    """Run one participant service."""
    from orchestrator.runtime import serve  # noqa: PLC0415
    from participants.registry import PARTICIPANTS  # noqa: PLC0415

    if name not in PARTICIPANTS:
        typer.echo(f"unknown participant {name!r}; choose one of {', '.join(PARTICIPANTS)}", err=True)
        raise typer.Exit(2)
    config = settings()
    configure_logging(name, config.log_level)
    run(serve(PARTICIPANTS[name].spec(config), config))


@app.command()
def relay(service: Annotated[str, typer.Argument(help="orchestrator or a participant name")] = "orchestrator") -> None:
    """Run an extra outbox relay for one service's schema (services also relay in-process)."""
    from orchestrator.cli._relay import run_relay  # noqa: PLC0415

    config = settings()
    configure_logging(f"{service}-relay", config.log_level)
    run(run_relay(config, service))


app.command("diagram")(_inspect.diagram)


@contracts_app.command("schema")
def schema(output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None) -> None:
    """Export every message's JSON Schema, the envelope and the header names."""
    document = json_schemas()
    if output is None:
        print_json(document)
    else:
        output.write_text(json.dumps(document, indent=2))
        typer.echo(f"wrote {output}")


def main() -> None:
    app()


__all__ = ["app", "main"]
