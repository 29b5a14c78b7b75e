"""What every peer script shares: the order plan, the participants' tables and SQL, the closed loop, the audit, output.

Each peer runs the same five steps with the same designed failures as Sagaline's demo catalog
(``orchestrator/launch/_catalog.py``: ``plan_orders`` and ``scenario_for``; a test checks they agree). A step or a
compensation is one call of a PL/pgSQL function in one local Postgres transaction; every function is idempotent by
order id, like Sagaline's participants (which also dedupe by message id in their inbox).

Only the standard library and psycopg: this module runs in the peers' virtualenv, never in Sagaline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from peer_plan import (
    COMPENSATED,
    COMPENSATION,
    COMPLETED,
    FAILED,
    FAILING_STEP,
    STEPS,
    Order,
    designed_outcomes,
    plan_orders,
    scenario_for,
)

__all__ = [
    "COMPENSATED",
    "COMPENSATION",
    "COMPLETED",
    "FAILED",
    "FAILING_STEP",
    "STEPS",
    "Order",
    "designed_outcomes",
    "plan_orders",
    "scenario_for",
]

ADMIN_URL = os.environ.get("PEERS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


class StepRefusedError(Exception):
    """A participant's definitive refusal (not retryable): the saga compensates what it did so far."""


# --- the participants: tables and one function per step and compensation --------------------------------------

SCHEMA_SQL = """
CREATE TABLE orders (order_id text PRIMARY KEY, customer_id text NOT NULL, amount_cents bigint NOT NULL,
                     status text NOT NULL);
CREATE TABLE product (sku text PRIMARY KEY, on_hand integer NOT NULL, reserved integer NOT NULL DEFAULT 0,
                      CHECK (reserved >= 0 AND reserved <= on_hand));
CREATE TABLE reservation (order_id text PRIMARY KEY, sku text NOT NULL, quantity integer NOT NULL,
                          status text NOT NULL);
CREATE TABLE customer (customer_id text PRIMARY KEY, credit_limit_cents bigint NOT NULL,
                       outstanding_cents bigint NOT NULL DEFAULT 0);
CREATE TABLE charge (order_id text PRIMARY KEY, customer_id text NOT NULL, amount_cents bigint NOT NULL,
                     status text NOT NULL);
CREATE TABLE shipment (order_id text PRIMARY KEY, country text NOT NULL, status text NOT NULL);
INSERT INTO product VALUES ('SKU-1', 1000000, 0), ('SKU-2', 1000000, 0), ('SKU-3', 1000000, 0), ('SKU-SOLDOUT', 0, 0);
INSERT INTO customer SELECT 'cust-' || i, 1000000000000 FROM generate_series(1, 10) AS i;
INSERT INTO customer VALUES ('cust-broke', 100);

CREATE FUNCTION create_order(o text, c text, amount bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF amount > 5000000 THEN RETURN 'order exceeds the maximum of 5000000 cents'; END IF;
  INSERT INTO orders VALUES (o, c, amount, 'created') ON CONFLICT DO NOTHING;
  RETURN 'ok';
END $$;
CREATE FUNCTION approve_order(o text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  UPDATE orders SET status = 'approved' WHERE order_id = o AND status IN ('created', 'approved');
  RETURN CASE WHEN FOUND THEN 'ok' ELSE 'no live order ' || o END;
END $$;
CREATE FUNCTION reserve_inventory(o text, s text, q integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE existing text;
BEGIN
  SELECT status INTO existing FROM reservation WHERE order_id = o;
  IF existing = 'live' THEN RETURN 'ok'; END IF;
  IF existing IS NOT NULL THEN RETURN 'order already has a ' || existing || ' reservation'; END IF;
  UPDATE product SET reserved = reserved + q WHERE sku = s AND on_hand - reserved >= q;
  IF NOT FOUND THEN RETURN 'not enough stock for ' || s; END IF;
  INSERT INTO reservation VALUES (o, s, q, 'live');
  RETURN 'ok';
END $$;
CREATE FUNCTION release_inventory(o text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r reservation;
BEGIN
  UPDATE reservation SET status = 'released' WHERE order_id = o AND status = 'live' RETURNING * INTO r;
  IF FOUND THEN
    UPDATE product SET reserved = reserved - r.quantity WHERE sku = r.sku;
  ELSE  -- release before reserve: a tombstone, so a late reserve is refused
    INSERT INTO reservation VALUES (o, '', 0, 'released') ON CONFLICT DO NOTHING;
  END IF;
  RETURN 'ok';
END $$;
CREATE FUNCTION charge_payment(o text, c text, amount bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE lim bigint; outstanding bigint;
BEGIN
  PERFORM 1 FROM charge WHERE order_id = o AND status = 'charged';
  IF FOUND THEN RETURN 'ok'; END IF;
  SELECT credit_limit_cents, outstanding_cents INTO lim, outstanding FROM customer WHERE customer_id = c FOR UPDATE;
  IF lim IS NULL THEN RETURN 'unknown customer ' || c; END IF;
  IF outstanding + amount > lim THEN RETURN 'over the credit limit'; END IF;
  INSERT INTO charge VALUES (o, c, amount, 'charged') ON CONFLICT DO NOTHING;
  IF FOUND THEN UPDATE customer SET outstanding_cents = outstanding_cents + amount WHERE customer_id = c; END IF;
  RETURN 'ok';
END $$;
CREATE FUNCTION refund_payment(o text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r charge;
BEGIN
  UPDATE charge SET status = 'refunded' WHERE order_id = o AND status = 'charged' RETURNING * INTO r;
  IF FOUND THEN
    UPDATE customer SET outstanding_cents = outstanding_cents - r.amount_cents WHERE customer_id = r.customer_id;
  ELSE  -- refund before charge: a tombstone, so a late charge is refused
    INSERT INTO charge VALUES (o, '', 0, 'refunded') ON CONFLICT DO NOTHING;
  END IF;
  RETURN 'ok';
END $$;
CREATE FUNCTION schedule_shipment(o text, country text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF upper(country) = 'AQ' THEN RETURN 'we do not ship to ' || country; END IF;
  INSERT INTO shipment VALUES (o, upper(country), 'scheduled') ON CONFLICT DO NOTHING;
  RETURN 'ok';
END $$;
"""

# The compensations that only mark a row (or leave a tombstone, when the step never ran: a late step is refused).
_MARK = (
    "CREATE FUNCTION {0}(o text) RETURNS text LANGUAGE sql AS $$ INSERT INTO {1} VALUES (o, {2}, '{3}') "
    "ON CONFLICT (order_id) DO UPDATE SET status = '{3}'; SELECT 'ok' $$;"
)
SCHEMA_SQL += "\n".join(
    _MARK.format(*marks)
    for marks in (
        ("cancel_order", "orders", "'', 0", "cancelled"),
        ("cancel_shipment", "shipment", "''", "cancelled"),
    )
)

_ARGUMENTS = {
    "create_order": ("order_id", "customer_id", "amount_cents"),
    "reserve_inventory": ("order_id", "sku", "quantity"),
    "charge_payment": ("order_id", "customer_id", "amount_cents"),
    "schedule_shipment": ("order_id", "country"),
    "approve_order": ("order_id",),
}


def step_sql(action: str, order: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The statement (psycopg's ``%(name)s`` style) and parameters of a step or a compensation for an order."""
    names = _ARGUMENTS.get(action, ("order_id",))
    values = order | ({"amount_cents": order["quantity"] * order["unit_price_cents"]} if "quantity" in order else {})
    placeholders = ", ".join(f"%({name})s" for name in names)
    return f"SELECT {action}({placeholders})", {name: values[name] for name in names}


def check_reply(action: str, reply: str) -> None:
    """Raise the refusal of a step; a compensation must never refuse."""
    if reply != "ok":
        raise StepRefusedError(f"{action}: {reply}")


def run_sync(conn: psycopg.Connection[Any], action: str, order: dict[str, Any]) -> None:
    """One step or compensation as one local transaction on a sync connection (autocommit off)."""
    sql, params = step_sql(action, order)
    with conn.transaction():
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    check_reply(action, row[0])


async def run_async(conn: psycopg.AsyncConnection[Any], action: str, order: dict[str, Any]) -> None:
    """The same on an async connection."""
    sql, params = step_sql(action, order)
    async with conn.transaction():
        row = await (await conn.execute(sql, params)).fetchone()
    assert row is not None
    check_reply(action, row[0])


@contextmanager
def fresh_database(peer: str) -> Iterator[str]:
    """A database of its own for one run, with the participants' tables; dropped afterwards, whatever happens."""
    name = f"peers_{peer.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA_SQL)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the closed loop, the figures, the audit -------------------------------------------------------------------

RunOne = Callable[[Order], Awaitable[str]]


@dataclass
class Measured:
    outcomes: dict[str, str] = field(default_factory=dict)  # order id -> completed / compensated / failed
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)


async def closed_loop(orders: list[Order], concurrency: int, run_one: RunOne) -> Measured:
    """Run every order's saga, ``concurrency`` in flight: a new saga starts as soon as one ends."""
    measured = Measured()
    pending = iter(orders)

    async def lane() -> None:
        for order in pending:
            started = time.perf_counter()
            try:
                outcome = await run_one(order)
            except Exception as exc:
                measured.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                outcome = FAILED
            measured.latencies_ms.append((time.perf_counter() - started) * 1000)
            measured.outcomes[order.order_id] = outcome

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    measured.elapsed_s = time.perf_counter() - started
    return measured


def percentile(values: list[float], share: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else 0.0


_AUDIT_SQL = """
SELECT order_id, o.status, r.status, c.status, s.status
FROM unnest(%(ids)s::text[]) AS wanted(order_id)
LEFT JOIN orders o USING (order_id) LEFT JOIN reservation r USING (order_id)
LEFT JOIN charge c USING (order_id) LEFT JOIN shipment s USING (order_id)
"""
_STOCK_SQL = """
SELECT p.sku, p.reserved, coalesce(sum(r.quantity) FILTER (WHERE r.status = 'live'), 0)
FROM product p LEFT JOIN reservation r USING (sku) GROUP BY p.sku, p.reserved
"""
_LIVE = {"order": ("created", "approved"), "reservation": ("live",), "charge": ("charged",), "shipment": ("scheduled",)}


def audit(database_url: str, orders: list[Order], outcomes: dict[str, str]) -> list[str]:
    """Every saga ended as designed; a completed order holds everything, a compensated one nothing live."""
    problems = [
        f"{o.order_id} ({o.scenario}): {outcomes.get(o.order_id, 'no outcome')}, expected {o.expected}"
        for o in orders
        if outcomes.get(o.order_id) != o.expected
    ]
    by_id = {o.order_id: o for o in orders}
    with psycopg.connect(database_url) as conn:
        for order_id, *statuses in conn.execute(_AUDIT_SQL, {"ids": list(by_id)}):
            live = [kind for kind, status in zip(_LIVE, statuses, strict=True) if status in _LIVE[kind]]
            if by_id[order_id].expected == COMPLETED and (len(live) < len(_LIVE) or statuses[0] != "approved"):
                problems.append(f"{order_id} completed but holds only {live} ({statuses})")
            if by_id[order_id].expected == COMPENSATED and live:
                problems.append(f"{order_id} compensated but {live} still live")
        problems += [
            f"stock of {sku}: {reserved} reserved, {live} in live reservations"
            for sku, reserved, live in conn.execute(_STOCK_SQL)
            if reserved != live
        ]
    return problems


@dataclass(frozen=True)
class Args:
    sagas: int
    concurrency: int
    failure_share: float
    warmup: int
    json: bool


def parse_args(peer: str, argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(prog=f"{peer}_saga.py", description=f"The order saga on {peer}: closed loop.")
    parser.add_argument("--sagas", type=int, default=2000, help="sagas in the measured run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="sagas in flight (default 64)")
    parser.add_argument("--failure-share", type=float, default=0.1, help="share designed to fail (default 0.1)")
    parser.add_argument("--warmup", type=int, default=None, help="sagas run first, not measured (default: N/20)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ns = parser.parse_args(argv)
    warmup = ns.warmup if ns.warmup is not None else max(ns.concurrency, ns.sagas // 20)
    return Args(ns.sagas, ns.concurrency, ns.failure_share, warmup, ns.json)


async def benchmark(peer: str, args: Args, database_url: str, run_one: RunOne, **notes: Any) -> dict[str, Any]:
    """Warm up, measure, audit (warm-up sagas included), and report; returns the JSON object."""
    warmup = plan_orders(args.warmup, args.failure_share, f"w{uuid.uuid4().hex[:6]}")
    measured_orders = plan_orders(args.sagas, args.failure_share, f"m{uuid.uuid4().hex[:6]}")
    warm = await closed_loop(warmup, args.concurrency, run_one)
    measured = await closed_loop(measured_orders, args.concurrency, run_one)
    problems = audit(database_url, warmup + measured_orders, warm.outcomes | measured.outcomes)
    counts = Counter(measured.outcomes.values())
    report = {
        "peer": peer,
        "sagas": args.sagas,
        "concurrency": args.concurrency,
        "failure_share": args.failure_share,
        "sagas_per_s": round(len(measured.outcomes) / measured.elapsed_s, 2) if measured.elapsed_s else 0.0,
        "latency_ms": {
            name: round(percentile(measured.latencies_ms, share), 1)
            for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        },
        "outcomes": {kind: counts.get(kind, 0) for kind in (COMPLETED, COMPENSATED, FAILED)},
        "designed_to_fail": sum(o.expected == COMPENSATED for o in measured_orders),
        "correct": not problems,
        "problems": problems[:10],
        "errors": dict((warm.errors + measured.errors).most_common(5)),
        "warmup": args.warmup,
        "elapsed_s": round(measured.elapsed_s, 2),
        "notes": notes,
    }
    emit(report, as_json=args.json)
    return report


UNAVAILABLE_EXIT = 3


def unavailable(peer: str, reason: str, *, as_json: bool) -> int:
    """Say why this peer cannot run here (compare.py shows it as such); the exit code says so too."""
    print(json.dumps({"peer": peer, "unavailable": reason}) if as_json else f"peer {peer} unavailable: {reason}")
    return UNAVAILABLE_EXIT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def emit(report: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    latency, outcomes = report["latency_ms"], report["outcomes"]
    print(f"peer        {report['peer']}  ({report['sagas']} sagas, {report['concurrency']} in flight)")
    print(f"sagas/s     {report['sagas_per_s']:.1f}  ({report['elapsed_s']:.1f} s)")
    print("latency ms  " + "  ".join(f"{name} {value:.0f}" for name, value in latency.items()))
    print("outcomes    " + ", ".join(f"{count} {kind}" for kind, count in outcomes.items()))
    print(f"correct     {report['correct']}" + "".join(f"\n  {p}" for p in report["problems"]))
    for error, count in report["errors"].items():
        print(f"  error x{count}: {error}")
