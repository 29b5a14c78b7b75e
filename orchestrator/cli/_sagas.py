"""``sagaline saga …``: start, list, show, history and the operator verbs (retry, resume, cancel, compensate)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from contracts import Address, Envelope, LineItem, PlaceOrder
from orchestrator import telemetry
from orchestrator.admin import AdminService, SagaFilter
from orchestrator.cli._admin import default_actor, parse_time, with_service
from orchestrator.cli._common import print_json, run, settings
from orchestrator.definition import OperatorVerb, SagaStatus
from orchestrator.messaging import body_bytes, encode_body, kafka_headers, make_producer

app = typer.Typer(help="Start, inspect and operate sagas.", no_args_is_help=True)
console = Console()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
ReasonOption = Annotated[str, typer.Option(help="Why: recorded in the saga's history.")]
ActorOption = Annotated[str | None, typer.Option(help="Who: recorded in the history (default cli:<user>@<host>).")]


async def _publish_start(command: PlaceOrder) -> str:
    config = settings()
    message_id = str(uuid.uuid4())
    envelope = Envelope(message_id=message_id, type=command.type_name(), saga_id=command.saga_id)
    producer = make_producer(config)
    await producer.start()
    try:
        await producer.send_and_wait(
            config.topics.start,
            value=body_bytes(encode_body(command)),
            key=(command.saga_id or command.order_id).encode(),
            headers=kafka_headers(envelope.to_headers()),
        )
    finally:
        await producer.stop()
    return message_id


@app.command("start")
def start(
    order_id: Annotated[str, typer.Option(help="Order id; also the saga id unless --saga-id is given.")] = "",
    customer: Annotated[str, typer.Option(help="Customer id (payment checks its credit limit).")] = "cust-1",
    sku: Annotated[str, typer.Option(help="SKU to order.")] = "SKU-1",
    quantity: Annotated[int, typer.Option(help="Quantity.")] = 1,
    price_cents: Annotated[int, typer.Option(help="Unit price in cents.")] = 1000,
    country: Annotated[str, typer.Option(help="Ship-to country (ISO alpha-2).")] = "DE",
    saga_id: Annotated[str | None, typer.Option(help="Saga id to use (default: the order id).")] = None,
    file: Annotated[Path | None, typer.Option(help="A PlaceOrder JSON file instead of the options.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a PlaceOrder start command to saga.start."""
    if file is not None:
        command = PlaceOrder.model_validate_json(file.read_text())
    else:
        oid = order_id or f"order-{uuid.uuid4().hex[:12]}"
        command = PlaceOrder(
            order_id=oid,
            customer_id=customer,
            items=(LineItem(sku=sku, quantity=quantity, unit_price_cents=price_cents),),
            address=Address(line1="1 Main St", city="Springfield", country=country),
            saga_id=saga_id or oid,
        )
    message_id = run(_publish_start(command))
    result = {"saga_id": command.saga_id, "order_id": command.order_id, "message_id": message_id}
    if as_json:
        print_json(result)
    else:
        console.print(f"sent PlaceOrder for saga [bold]{command.saga_id}[/] (message {message_id})")
        console.print(f"follow it with: sagaline saga show {command.saga_id}")


def _history_table(events: list[dict[str, Any]]) -> Table:
    table = Table("seq", "at", "event", "step", "status", "details")
    for event in events:
        table.add_row(
            str(event["seq"]),
            event["at"].strftime("%H:%M:%S.%f")[:-3],
            event["type"],
            event["step"] or "",
            event["to_status"],
            json.dumps({k: v for k, v in event["payload"].items() if k != "state"})[:90],
        )
    return table


@app.command("show")
def show(
    saga_id: str,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Show the state as it was then (ISO 8601 with a zone).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A saga's state, data, current step, deadline, attempts and last error, then its history."""
    if as_of is not None:
        moment = parse_time(as_of)
        result = with_service(lambda s: s.as_of(saga_id, moment), as_json=as_json)
        print_as_of(result, as_json=as_json)
        return
    shown = with_service(lambda s: s.show(saga_id), as_json=as_json)
    if as_json:
        print_json(shown)
        return
    row = shown["saga"]
    console.print(f"[bold]{row['id']}[/] ({row['saga_type']} v{row['definition_version']}): [bold]{row['status']}[/]")
    console.print(
        f"  step={row['step']} attempt={row['attempt']} waiting={row['waiting']} deadline={row['deadline_at']}"
    )
    console.print(f"  completed={row['completed_steps']} to_compensate={row['to_compensate']}")
    console.print(f"  created={row['created_at']} updated={row['updated_at']} expires={row['expires_at']}")
    if trace_id := row["trace_id"]:
        console.print(f"  trace: {trace_id}  (Jaeger: {telemetry.jaeger_trace_url(trace_id)})")
    if row["failure_reason"]:
        console.print(f"  reason: {row['failure_reason']}")
    if row["last_error"]:
        console.print(f"  last error: {row['last_error']}")
    console.print(f"  data: {json.dumps(row['data'])[:300]}")
    console.print(_history_table(shown["history"]))


def print_as_of(result: dict[str, Any], *, as_json: bool) -> None:
    state, moment, saga_id = result["state"], result["as_of"], result["saga_id"]
    if as_json:
        print_json(result)
    elif state is None:
        console.print(f"saga {saga_id} did not exist yet at {moment.isoformat()}")
    else:
        console.print(f"saga {saga_id} at {moment.isoformat()}: [bold]{state['status']}[/] step={state['step']}")
        console.print(f"  attempt={state['attempt']} waiting={state['waiting']} deadline={state['deadline_at']}")
        console.print(f"  completed={state['completed_steps']} to_compensate={state['to_compensate']}")


@app.command("history")
def history(saga_id: str, as_json: JsonFlag = False) -> None:
    """The saga's append-only history events, oldest first."""
    events = with_service(lambda s: s.history(saga_id), as_json=as_json)
    if as_json:
        print_json(events)
    else:
        console.print(_history_table(events))


@app.command("list")
def list_sagas(
    status: Annotated[SagaStatus | None, typer.Option(help="Only sagas in this status.")] = None,
    saga_type: Annotated[str | None, typer.Option("--type", help="Only sagas of this definition.")] = None,
    version: Annotated[int | None, typer.Option(help="Only sagas on this definition version.")] = None,
    step: Annotated[str | None, typer.Option(help="Only sagas at this step.")] = None,
    older_than: Annotated[str | None, typer.Option(help="Started at least this long ago: 90s, 10m, 2h, 1d.")] = None,
    stuck: Annotated[bool, typer.Option("--stuck", help="Failed, or live and not moving (see --stuck-for).")] = False,
    stuck_for: Annotated[str, typer.Option(help="With --stuck: no state change for this long.")] = "60s",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size, newest change first.")] = 50,
    after: Annotated[str | None, typer.Option("--after", help="The cursor a previous page printed.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List sagas, newest change first, with filters; pages continue with --after <cursor>."""

    def where() -> SagaFilter:  # parsed inside the service call, so a bad duration exits 2 with a message
        return SagaFilter.parse(
            status=status,
            saga_type=saga_type,
            definition_version=version,
            step=step,
            older_than=older_than,
            stuck=stuck,
            stuck_for=stuck_for,
        )

    page = with_service(lambda s: s.list_sagas(where(), limit=limit, cursor=after), as_json=as_json)
    if as_json:
        print_json(page.rows)
        if page.next_cursor:
            typer.echo(f"next page: --after {page.next_cursor}", err=True)
        return
    table = Table("saga id", "type", "v", "status", "step", "attempt", "updated", "reason")
    for r in page.rows:
        table.add_row(
            r["id"],
            r["saga_type"],
            str(r["definition_version"]),
            r["status"],
            r["step"] or "",
            str(r["attempt"]),
            r["updated_at"].strftime("%Y-%m-%d %H:%M:%S"),
            (r["failure_reason"] or "")[:50],
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: sagaline saga list … --after {page.next_cursor}")


def _operate(verb: OperatorVerb, saga_id: str, reason: str, actor: str | None, as_json: bool) -> None:
    who = actor or default_actor()

    async def go(service: AdminService) -> dict[str, Any]:
        telemetry.setup("cli")  # OTLP only (no metrics port): the operator's spans join the saga's trace
        try:
            return asdict(await service.operate(verb, saga_id, reason=reason, actor=who))
        finally:
            telemetry.shutdown()

    result = with_service(go, as_json=as_json)
    if as_json:
        print_json(result)
    else:
        console.print(f"saga {saga_id}: {verb} recorded (by {who}); now {result['status']} at {result['step']}")


@app.command("retry")
def retry(saga_id: str, reason: ReasonOption = "", actor: ActorOption = None, as_json: JsonFlag = False) -> None:
    """Re-send the current step's command now (same message id, next attempt)."""
    _operate(OperatorVerb.RETRY, saga_id, reason or "retry requested", actor, as_json)


@app.command("resume")
def resume(saga_id: str, reason: ReasonOption = "", actor: ActorOption = None, as_json: JsonFlag = False) -> None:
    """Retry the compensation a failed saga stopped at."""
    _operate(OperatorVerb.RESUME, saga_id, reason or "resumed by operator", actor, as_json)


@app.command("cancel")
def cancel(
    saga_id: str,
    reason: ReasonOption = "cancelled by operator",
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Compensate a running saga (the step in flight included)."""
    _operate(OperatorVerb.CANCEL, saga_id, reason, actor, as_json)


@app.command("compensate")
def compensate(
    saga_id: str,
    reason: ReasonOption = "compensation forced by operator",
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Force compensation of a running or completed saga: every step done is undone, in reverse."""
    _operate(OperatorVerb.COMPENSATE, saga_id, reason, actor, as_json)
