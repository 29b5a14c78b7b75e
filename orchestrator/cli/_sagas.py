"""``sagaline saga …``: start, show, list, cancel, resume."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from contracts import Address, Envelope, LineItem, PlaceOrder
from orchestrator import telemetry
from orchestrator.cli._common import print_json, run, settings
from orchestrator.messaging import body_bytes, encode_body, make_producer
from orchestrator.persistence import create_engine, saga_event, saga_instance
from orchestrator.runtime import SagaManager, SagaNotFoundError
from orchestrator.sagas import DEFINITIONS

app = typer.Typer(help="Start, inspect and operate sagas.", no_args_is_help=True)
console = Console()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


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
            headers=[(k, v.encode()) for k, v in envelope.to_headers().items()],
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


async def _load(saga_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    engine = create_engine(settings().database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(saga_instance).where(saga_instance.c.id == saga_id))).mappings().first()
            events = (
                (
                    await conn.execute(
                        select(saga_event).where(saga_event.c.saga_id == saga_id).order_by(saga_event.c.seq),
                    )
                )
                .mappings()
                .all()
            )
    finally:
        await engine.dispose()
    return (dict(row) if row else None), [dict(e) for e in events]


def load_or_exit(saga_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The saga row and its history; exits with status 1 and a message when there is no such saga."""
    row, events = run(_load(saga_id))
    if row is None:
        console.print(f"[red]no saga {saga_id!r}[/]")
        raise typer.Exit(1)
    return row, events


@app.command("show")
def show(saga_id: str, as_json: JsonFlag = False) -> None:
    """Show a saga's state and its full history."""
    row, events = load_or_exit(saga_id)
    if as_json:
        print_json({"saga": row, "history": events})
        return
    console.print(f"[bold]{row['id']}[/] ({row['saga_type']} v{row['definition_version']}): [bold]{row['status']}[/]")
    console.print(f"  step={row['step']} attempt={row['attempt']} deadline={row['deadline_at']}")
    if trace_id := telemetry.trace_id_of(row["trace_context"]):
        console.print(f"  trace: {trace_id}  (Jaeger: {telemetry.jaeger_trace_url(trace_id)})")
    if row["failure_reason"]:
        console.print(f"  reason: {row['failure_reason']}")
    table = Table("seq", "at", "event", "step", "status", "details")
    for event in events:
        table.add_row(
            str(event["seq"]),
            event["at"].strftime("%H:%M:%S.%f")[:-3],
            event["type"],
            event["step"] or "",
            event["to_status"],
            json.dumps(event["payload"])[:80],
        )
    console.print(table)


async def _list(status: str | None, limit: int) -> list[dict[str, Any]]:
    engine = create_engine(settings().database_url, pool_size=1)
    query = (
        select(
            saga_instance.c.id,
            saga_instance.c.saga_type,
            saga_instance.c.status,
            saga_instance.c.step,
            saga_instance.c.failure_reason,
            saga_instance.c.updated_at,
        )
        .order_by(saga_instance.c.updated_at.desc())
        .limit(limit)
    )
    if status:
        query = query.where(saga_instance.c.status == status)
    try:
        async with engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings().all()]
    finally:
        await engine.dispose()


@app.command("list")
def list_sagas(
    status: Annotated[str | None, typer.Option(help="running, compensating, completed, compensated or failed.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List sagas, newest first."""
    rows = run(_list(status, limit))
    if as_json:
        print_json(rows)
        return
    table = Table("saga id", "type", "status", "step", "reason")
    for r in rows:
        table.add_row(r["id"], r["saga_type"], r["status"], r["step"] or "", (r["failure_reason"] or "")[:60])
    console.print(table)


async def _operate(saga_id: str, action: str, reason: str) -> dict[str, Any]:
    config = settings()
    engine = create_engine(config.database_url, pool_size=1)
    manager = SagaManager(engine, config, DEFINITIONS)
    telemetry.setup("cli")  # OTLP only (no metrics port): the operator's spans join the saga's trace
    try:
        actions = await (manager.cancel(saga_id, reason) if action == "cancel" else manager.resume(saga_id))
    finally:
        await engine.dispose()
        telemetry.shutdown()
    return {"saga_id": saga_id, "status": actions.state.status.value, "changed": not actions.ignored}


def _operator(saga_id: str, action: str, reason: str, as_json: bool) -> None:
    try:
        result = run(_operate(saga_id, action, reason))
    except SagaNotFoundError:
        console.print(f"[red]no saga {saga_id!r}[/]")
        raise typer.Exit(1) from None
    if as_json:
        print_json(result)
    elif result["changed"]:
        console.print(f"saga {saga_id}: now {result['status']}")
    else:
        console.print(f"saga {saga_id} is {result['status']}: nothing to {action}")


@app.command("cancel")
def cancel(
    saga_id: str,
    reason: Annotated[str, typer.Option(help="Recorded in the history.")] = "cancelled by operator",
    as_json: JsonFlag = False,
) -> None:
    """Compensate a running saga (the step in flight included)."""
    _operator(saga_id, "cancel", reason, as_json)


@app.command("resume")
def resume(saga_id: str, as_json: JsonFlag = False) -> None:
    """Retry the compensation a failed saga stopped at."""
    _operator(saga_id, "resume", "", as_json)
