"""Sagaline side by side with its peers, from one run: ``python bench/peers/compare.py [--sagas 2000] [--json]``.

Creates (once, again when requirements.txt changes) the peers' own virtualenv ``.sagaline/peers-venv`` from
``bench/peers/requirements.txt``, runs every peer script there (DBOS, Temporal, celery-saga) and Sagaline's
``bench/saga_throughput.py`` with Sagaline's interpreter, all with the same sagas, concurrency and failure
share, and prints one table with the ratios Sagaline ÷ peer. A peer that cannot run is shown as
``unavailable: <reason>``, never with a figure. Standard library only: it runs in any Python 3.11+.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from peer_plan import COMPENSATED, COMPLETED, designed_outcomes

PEERS_DIR = Path(__file__).resolve().parent
REPO = PEERS_DIR.parent.parent
PEERS_VENV = REPO / ".sagaline" / "peers-venv"
REQUIREMENTS = PEERS_DIR / "requirements.txt"
PEER_SCRIPTS = {"dbos": "dbos_saga.py", "celery-saga": "celerysaga_saga.py", "temporal": "temporal_saga.py"}
UNAVAILABLE_EXIT = 3  # peer_common.UNAVAILABLE_EXIT


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/peers/compare.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sagas", type=int, default=2000, help="sagas per measured run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="sagas in flight, closed loop (default 64)")
    parser.add_argument("--failure-share", type=float, default=0.1, help="share designed to fail (default 0.1)")
    parser.add_argument("--warmup", type=int, default=None, help="sagas run first, not measured (default: N/20)")
    parser.add_argument("--peers", default=",".join(PEER_SCRIPTS), help="comma-separated peers (default: all)")
    parser.add_argument("--no-sagaline", action="store_true", help="run only the peers")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (progress on stderr)")
    args = parser.parse_args(argv)
    if args.warmup is None:  # the same warm-up for everyone
        args.warmup = max(args.concurrency, args.sagas // 20)
    return args


def _common_options(args: argparse.Namespace) -> list[str]:
    options = ["--sagas", str(args.sagas), "--concurrency", str(args.concurrency)]
    return [*options, "--failure-share", str(args.failure_share), "--warmup", str(args.warmup), "--json"]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except json.JSONDecodeError:
                return None
            return found if isinstance(found, dict) else None
    return None


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _run_json(command: list[str], *, cwd: Path, timeout_s: float) -> tuple[dict[str, Any] | None, str]:
    """Run a command that prints one JSON object; the object, or why there is none."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return None, f"no result within {timeout_s:.0f} s"
    except OSError as exc:
        return None, f"could not start: {exc}"
    found = _last_json(done.stdout)
    if found is None:
        return None, f"exit code {done.returncode}: {_tail(done.stderr)}"
    return found, ""


def ensure_peers_venv() -> tuple[Path | None, str]:
    """The peers' interpreter, creating or updating the virtualenv when requirements.txt changed."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python, ""
    _say(f"creating the peers' virtualenv {PEERS_VENV} from {REQUIREMENTS.relative_to(REPO)} ...")
    steps = [
        [sys.executable, "-m", "venv", str(PEERS_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return None, f"the peers' virtualenv could not be made ({' '.join(command[:4])}): {_tail(done.stderr)}"
    stamp.write_text(wanted + "\n")
    return python, ""


def run_peer(python: Path, peer: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [str(python), PEER_SCRIPTS[peer], *_common_options(args)]
    found, why = _run_json(command, cwd=PEERS_DIR, timeout_s=300 + args.sagas * 1.2)
    return found if found is not None else {"peer": peer, "unavailable": why}


def _sagaline_python() -> str:
    own = REPO / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


def run_sagaline(args: argparse.Namespace) -> dict[str, Any]:
    """Sagaline's closed-loop figures from bench/saga_throughput.py (the whole stack, one repeat)."""
    script = REPO / "bench" / "saga_throughput.py"
    if not script.exists():
        return {"peer": "sagaline", "unavailable": "not available yet (bench/saga_throughput.py has not landed)"}
    command = [_sagaline_python(), str(script), *_common_options(args), "--repeats", "1"]
    with tempfile.TemporaryDirectory(prefix="peers-sagaline-") as out:
        found, why = _run_json([*command, "--output-dir", out], cwd=REPO, timeout_s=900 + args.sagas * 0.5)
    closed = (found or {}).get("closed_loop")
    if not isinstance(closed, dict) or "sagas_per_s" not in closed:
        return {"peer": "sagaline", "unavailable": why or "its JSON has no closed_loop figures"}
    outcomes = {kind: closed.get("outcomes", {}).get(kind, 0) for kind in _designed(args)}
    return {
        "peer": "sagaline",
        "sagas": args.sagas,
        "concurrency": args.concurrency,
        "failure_share": args.failure_share,
        "sagas_per_s": closed["sagas_per_s"],
        "latency_ms": closed.get("latency_ms", {}),
        "outcomes": outcomes,
        "correct": bool(found and found.get("invariants_ok")) and outcomes == _designed(args),
        "notes": {"source": "bench/saga_throughput.py --repeats 1, closed loop"},
    }


def _designed(args: argparse.Namespace) -> dict[str, int]:
    design = designed_outcomes(args.sagas, args.failure_share)
    return {COMPLETED: design[COMPLETED], COMPENSATED: design[COMPENSATED], "failed": 0, "unfinished": 0}


def ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Sagaline ÷ peer: above 1 for sagas/s means Sagaline is faster; below 1 for latency means it is quicker."""
    ours = next((r for r in rows if r["peer"] == "sagaline" and "unavailable" not in r), None)
    if ours is None:
        return {}

    def over(mine: float | None, theirs: float | None) -> float | None:
        return round(mine / theirs, 2) if mine is not None and theirs else None

    return {
        row["peer"]: {
            "sagas_per_s": over(ours["sagas_per_s"], row["sagas_per_s"]),
            "p50": over(ours["latency_ms"].get("p50"), row["latency_ms"].get("p50")),
            "p99": over(ours["latency_ms"].get("p99"), row["latency_ms"].get("p99")),
        }
        for row in rows
        if row["peer"] != "sagaline" and "unavailable" not in row
    }


def table(result: dict[str, Any]) -> str:
    """A Markdown table: it reads in a terminal and pastes into bench/RESULTS.md."""
    lines = [
        f"{result['sagas']} sagas, {result['concurrency']} in flight, {result['failure_share']:.0%} designed to fail",
        "",
        "| peer | sagas/s | p50 ms | p99 ms | outcomes ok | Sagaline ÷ peer: sagas/s | p50 | p99 |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]

    def cell(value: float | None, digits: int = 1) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    for row in result["rows"]:
        if "unavailable" in row:
            lines.append(f"| {row['peer']} | unavailable: {row['unavailable']} | | | | | | |")
            continue
        ratio = result["ratios"].get(row["peer"], {})
        latency = row["latency_ms"]
        figures = [cell(row["sagas_per_s"]), cell(latency.get("p50"), 0), cell(latency.get("p99"), 0)]
        scaled = [cell(ratio.get(k), 2) + "x" if ratio.get(k) else "—" for k in ("sagas_per_s", "p50", "p99")]
        verdict = "yes" if row.get("correct") else "**no**"
        lines.append(f"| {row['peer']} | {' | '.join(figures)} | {verdict} | {' | '.join(scaled)} |")
    return "\n".join(lines)


def _summary(row: dict[str, Any]) -> str:
    if "unavailable" in row:
        return f"{row['peer']}: unavailable: {row['unavailable']}"
    latency = row["latency_ms"]
    return (
        f"{row['peer']}: {row['sagas_per_s']} sagas/s, p50 {latency.get('p50')} ms, p99 {latency.get('p99')} ms, "
        f"{row['outcomes']}, correct {row['correct']}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    rows: list[dict[str, Any]] = []
    if not args.no_sagaline:  # first: its stack is the heaviest, and the others' leftovers cannot slow it
        _say("running sagaline (bench/saga_throughput.py) ...")
        rows.append(run_sagaline(args))
        _say(_summary(rows[-1]))
    python, why = ensure_peers_venv()
    for peer in [p for p in args.peers.split(",") if p]:
        if peer not in PEER_SCRIPTS:
            rows.append({"peer": peer, "unavailable": f"no such peer (known: {', '.join(PEER_SCRIPTS)})"})
            continue
        _say(f"running {peer} ...")
        rows.append(run_peer(python, peer, args) if python else {"peer": peer, "unavailable": why})
        _say(_summary(rows[-1]))
    result = {
        "sagas": args.sagas,
        "concurrency": args.concurrency,
        "failure_share": args.failure_share,
        "rows": rows,
        "ratios": ratios(rows),
    }
    print(json.dumps(result) if args.json else table(result))
    return 0 if all(row.get("correct", True) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
