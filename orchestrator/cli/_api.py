"""``sagaline admin serve | openapi``: the HTTP admin API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.admin import AdminService
from orchestrator.cli._common import configure_logging, settings
from orchestrator.sagas import load_registry

app = typer.Typer(help="The HTTP admin API (JSON, OpenAPI, bearer token).", no_args_is_help=True)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default SAGALINE_ADMIN_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default SAGALINE_ADMIN_PORT, 8088).")] = None,
) -> None:
    """Serve the admin API. Requires SAGALINE_ADMIN_TOKEN; clients send `Authorization: Bearer <token>`."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from orchestrator.admin.api import create_app  # noqa: PLC0415

    config = settings()
    if config.admin_token is None or not config.admin_token.get_secret_value():
        typer.echo("refusing to start: set SAGALINE_ADMIN_TOKEN to the bearer token clients must send", err=True)
        raise typer.Exit(2)
    configure_logging("admin", config.log_level)
    registry = load_registry(config.saga_definitions)
    api = create_app(config.admin_token.get_secret_value(), lambda: AdminService(config, registry))
    uvicorn.run(api, host=host or config.admin_host, port=port or config.admin_port, log_level="warning")


@app.command("openapi")
def openapi(output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None) -> None:
    """Print the admin API's OpenAPI document."""
    from orchestrator.admin.api import create_app  # noqa: PLC0415 - FastAPI only when needed

    config = settings()
    registry = load_registry(config.saga_definitions)
    document = create_app("offline", lambda: AdminService(config, registry)).openapi()
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}")
