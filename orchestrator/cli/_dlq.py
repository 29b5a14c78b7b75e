"""``sagaline dlq …``: inspect dead letters and replay one after fixing its cause."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.cli._common import print_json, run, settings
from orchestrator.messaging import DLQ_HEADER_PREFIX, describe_dead_letter, make_producer, read_topic

app = typer.Typer(help="Dead letters: what could not be processed, and why.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_dead_letters(
    limit: Annotated[int, typer.Option(help="Show at most this many, oldest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List dead letters with their reason and where they came from."""
    config = settings()
    records = run(read_topic(config.kafka_bootstrap_servers, config.topics.dlq, max_records=limit))
    rows = [describe_dead_letter(r) for r in records[:limit]]
    if as_json:
        print_json(rows)
        return
    table = Table("offset", "reason", "source", "consumer", "error")
    for row in rows:
        source = f"{row['source_topic']}/{row['source_partition']}@{row['source_offset']}"
        table.add_row(str(row["offset"]), row["reason"] or "", source, row["consumer"] or "", (row["error"] or "")[:70])
    console.print(table)
    console.print(f"{len(rows)} dead letter(s) on {config.topics.dlq}")


async def _replay(offset: int, partition: int, to_topic: str | None) -> dict[str, Any]:
    config = settings()
    found = await read_topic(
        config.kafka_bootstrap_servers,
        config.topics.dlq,
        partition=partition,
        start_offset=offset,
        max_records=1,
    )
    record = next((r for r in found if r.offset == offset), None)
    if record is None:
        raise LookupError(f"no dead letter at offset {offset} of {config.topics.dlq}[{partition}]")
    info = describe_dead_letter(record)
    target = to_topic or info["source_topic"]
    if not target:
        raise LookupError(f"dead letter {offset} has no source topic; pass --to")
    original = [(k, v) for k, v in record.headers if not k.startswith(DLQ_HEADER_PREFIX)]
    producer = make_producer(config)
    await producer.start()
    try:
        meta = await producer.send_and_wait(target, value=record.value, key=record.key, headers=original)
    finally:
        await producer.stop()
    return {**info, "replayed_to": target, "replayed_partition": meta.partition, "replayed_offset": meta.offset}


@app.command("replay")
def replay(
    offset: Annotated[int, typer.Argument(help="The dead letter's offset (see `sagaline dlq list`).")],
    partition: Annotated[int, typer.Option(help="DLQ partition (Sagaline creates one).")] = 0,
    to: Annotated[str | None, typer.Option("--to", help="Publish to this topic instead of the source topic.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Publish a dead letter's original bytes and headers again, to where it came from."""
    try:
        result = run(_replay(offset, partition, to))
    except LookupError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    if as_json:
        print_json(result)
    else:
        console.print(
            f"replayed dead letter {offset} ({result['reason']}) to {result['replayed_to']}"
            f"[{result['replayed_partition']}]@{result['replayed_offset']}",
        )
