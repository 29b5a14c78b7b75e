"""Traces and metrics from the five real processes over the real broker: every process exports OTLP
(http/protobuf) to a receiver this test runs, and serves Prometheus on its own port."""

from __future__ import annotations

import asyncio
import random
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import Address, Envelope, LineItem, PlaceOrder
from orchestrator import telemetry
from orchestrator.launch import SERVICES, Cluster, Stack, free_port, send_orders
from orchestrator.messaging import body_bytes, encode_body, kafka_headers
from orchestrator.persistence import create_engine
from orchestrator.sagas import ORDER_FULFILLMENT
from orchestrator.telemetry._semconv import DEPRECATED
from tests.integration.helpers import eventually
from tests.support.infra import Infra
from tests.support.otlp import OtlpHttpReceiver, ReceivedSpan

pytestmark = pytest.mark.integration

SAGA_TYPE = ORDER_FULFILLMENT.name
Labels = tuple[tuple[str, str], ...]
CHARGE_1 = {"saga.attempt": 1, "sagaline.message.type": "ChargePayment"}


@dataclass
class Traced:
    stack: Stack
    cluster: Cluster
    receiver: OtlpHttpReceiver
    db: AsyncEngine
    metrics_ports: dict[str, int]

    @property
    def topics(self) -> Any:
        return self.stack.settings.topics


@pytest.fixture(scope="module")
async def traced(
    infra: Infra, database_url: str, topic_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Traced]:
    receiver = OtlpHttpReceiver()
    stack = Stack(
        workdir=tmp_path_factory.mktemp("telemetry"),
        database_url=database_url,
        bootstrap_servers=infra.bootstrap_servers,
        topic_prefix=topic_prefix,
        extra_env={
            **infra.broker_env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 100 ms, so a SIGKILL loses nothing we waited for
        },
    )
    db = create_engine(database_url, pool_size=2)
    try:
        await stack.start_infrastructure()
        cluster = Cluster(stack.env, stack.workdir / "logs", stack.services)
        ports = {name: free_port() for name in cluster.services}
        for name, service in cluster.services.items():
            service.env = {**service.env, "SAGALINE_METRICS_PORT": str(ports[name])}
        stack.cluster = cluster
        await asyncio.to_thread(cluster.start)
        yield Traced(stack, cluster, receiver, db, ports)
    finally:
        stack.stop()
        receiver.close()
        await db.dispose()


async def reconfigure(traced: Traced, name: str, *, force: bool = False, **env: str) -> None:
    """(Re)start one service with extra environment, unless it already runs with exactly that."""
    service = traced.cluster.services[name]
    wanted = {**service.env, **env}
    if not force and service.alive and wanted == dict(service.env):
        return
    await asyncio.to_thread(service.stop)
    service.env = wanted
    await asyncio.to_thread(service.start)
    await asyncio.to_thread(service.wait_ready)


def order(saga_id: str, *, country: str = "DE") -> PlaceOrder:
    return PlaceOrder(
        order_id=saga_id,
        saga_id=saga_id,
        customer_id="cust-3",
        items=(LineItem(sku="SKU-3", quantity=1, unit_price_cents=1200),),
        address=Address(line1="3 Trace Lane", city="Springfield", country=country),
    )


async def saga_row(db: AsyncEngine, saga_id: str) -> Any:
    async with db.connect() as conn:
        return (
            await conn.execute(
                text("SELECT status, step, waiting, trace_context FROM sagaline.saga_instance WHERE id = :id"),
                {"id": saga_id},
            )
        ).first()


async def wait_status(db: AsyncEngine, saga_id: str, status: str, timeout_s: float = 45) -> Any:
    async def check() -> Any:
        row = await saga_row(db, saga_id)
        assert row is not None
        assert row.status == status, row
        return row

    return await eventually(check, timeout_s=timeout_s)


def mentioning(receiver: OtlpHttpReceiver, saga_id: str) -> list[ReceivedSpan]:
    keys = ("saga.id", "messaging.message.conversation_id")
    return [s for s in receiver.snapshot() if saga_id in {s.attributes.get(k) for k in keys}]


def assert_one_tree(spans: list[ReceivedSpan]) -> None:
    ids = {s.span_id for s in spans}
    assert len(ids) == len(spans), "a span id is used twice"
    roots = [s for s in spans if not s.parent_id]
    assert len(roots) == 1, [(s.service, s.name) for s in roots]
    orphans = [(s.service, s.name) for s in spans if s.parent_id and s.parent_id not in ids]
    assert orphans == [], f"spans whose parent is missing: {orphans}"


async def whole_trace(traced: Traced, saga_id: str, *, services: int = 5) -> tuple[str, list[ReceivedSpan]]:
    """The saga's trace id (from the stored context), once its spans have arrived and form one tree."""
    row = await saga_row(traced.db, saga_id)
    trace_id = telemetry.trace_id_of(row.trace_context)
    assert trace_id is not None, row

    async def check() -> list[ReceivedSpan]:
        spans = traced.receiver.trace(trace_id)
        assert any(s.name == f"saga.end {SAGA_TYPE}" for s in spans)
        assert len({s.service for s in spans}) == services
        assert_one_tree(spans)
        return spans

    return trace_id, await eventually(check, timeout_s=20)


def one(spans: list[ReceivedSpan], name: str, **attributes: Any) -> ReceivedSpan:
    found = [s for s in spans if s.name == name and attributes.items() <= s.attributes.items()]
    assert len(found) == 1, (name, attributes, [(s.name, s.attributes) for s in spans if s.name == name])
    return found[0]


def glitch_once_seed() -> int:
    """A seed whose first charge glitches and whose second goes through (rate 0.5)."""
    return next(s for s in range(1000) if (r := random.Random(s)).random() < 0.5 <= r.random())


async def test_a_compensated_saga_is_one_trace_across_all_five_services(traced: Traced) -> None:
    seed = str(glitch_once_seed())
    await reconfigure(
        traced, "payment", force=True, SAGALINE_PAYMENT_GLITCH_RATE="0.5", SAGALINE_PAYMENT_GLITCH_SEED=seed
    )
    saga_id = f"traced-{uuid.uuid4().hex[:8]}"
    await send_orders(traced.stack.settings, [order(saga_id, country="AQ")])  # shipment refuses AQ
    await wait_status(traced.db, saga_id, "compensated")
    trace_id, spans = await whole_trace(traced, saga_id)

    assert {s.trace_id for s in mentioning(traced.receiver, saga_id)} == {trace_id}
    assert {s.service for s in spans} == {f"sagaline-{name}" for name in SERVICES}
    saga = {"saga.id": saga_id, "saga.type": SAGA_TYPE}
    assert one(spans, f"saga.start {SAGA_TYPE}").attributes.items() >= saga.items()

    retry = one(spans, "saga.retry charge_payment")
    assert retry.attributes.items() >= {**saga, "saga.step": "charge_payment", "saga.attempt": 2}.items()
    assert "gateway" in retry.attributes["saga.error"]
    failed = one(spans, "saga.step charge_payment", **{"saga.attempt": 1})
    assert failed.status_code == 2
    assert failed.attributes["saga.reply"] == "PaymentDeclined"
    assert one(spans, "saga.step charge_payment", **{"saga.attempt": 2}).status_code != 2
    assert one(spans, "saga.step schedule_shipment").attributes["saga.reply"] == "ShipmentRejected"
    compensation = one(spans, "saga.compensation schedule_shipment")
    assert compensation.attributes.items() >= saga.items()
    for step in ("charge_payment", "reserve_inventory", "create_order"):
        undo = one(spans, f"saga.compensate {step}")
        assert undo.attributes.items() >= {**saga, "saga.step": step, "saga.compensation": True}.items()
    assert one(spans, f"saga.end {SAGA_TYPE}").attributes.items() >= {**saga, "saga.outcome": "compensated"}.items()

    # Every participant's local transaction continues the command it handles.
    by_id = {s.span_id: s for s in spans}
    for tx in [s for s in spans if s.name.startswith("saga.local_transaction ")]:
        consumer = by_id[tx.parent_id]
        assert consumer.name.startswith("process ")
        assert consumer.service == tx.service
        assert by_id[consumer.parent_id].name.startswith("send ")
    # Messaging spans follow the current semantic conventions.
    send = one(spans, f"send {traced.topics.commands('payment')}", **CHARGE_1)
    assert send.kind == 4
    assert (
        send.attributes.items()
        >= {
            "messaging.system": "kafka",
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": traced.topics.commands("payment"),
            "messaging.kafka.message.key": saga_id,
            "messaging.message.conversation_id": saga_id,
        }.items()
    )
    assert by_id[send.parent_id] == failed, "the command's publish span is a child of its step span"
    received = [s for s in spans if s.name == f"process {traced.topics.commands('payment')}"]
    assert received
    assert all(s.kind == 5 and s.attributes["messaging.consumer.group.name"] == "sagaline-payment" for s in received)
    assert all(s.attributes["messaging.operation.name"] == "process" for s in received)
    assert not [s.name for s in spans if DEPRECATED.intersection(s.attributes)]


async def test_the_trace_continues_across_an_orchestrator_restart_between_two_steps(traced: Traced) -> None:
    cluster = traced.cluster
    await asyncio.to_thread(cluster.services["payment"].stop)
    saga_id = f"restart-{uuid.uuid4().hex[:8]}"
    await send_orders(traced.stack.settings, [order(saga_id)])

    async def waiting_for_payment() -> None:
        row = await saga_row(traced.db, saga_id)
        assert row is not None
        assert (row.step, row.waiting) == ("charge_payment", "reply")
        sent = mentioning(traced.receiver, saga_id)
        assert any(s.name == f"send {traced.topics.commands('payment')}" for s in sent)
        assert any(
            s.name == f"process {traced.topics.replies}" and s.attributes.get("saga.step") == "reserve_inventory"
            for s in sent
        )

    await eventually(waiting_for_payment, timeout_s=30)
    first = {s.instance for s in mentioning(traced.receiver, saga_id) if s.service == "sagaline-orchestrator"}
    await asyncio.to_thread(cluster.restart, "orchestrator")  # SIGKILL, then a new process
    await asyncio.to_thread(cluster.services["orchestrator"].wait_ready)
    await reconfigure(traced, "payment", force=True, SAGALINE_PAYMENT_GLITCH_RATE="0")
    await wait_status(traced.db, saga_id, "completed")
    trace_id, spans = await whole_trace(traced, saga_id)

    assert {s.trace_id for s in mentioning(traced.receiver, saga_id)} == {trace_id}
    orchestrators = {s.instance for s in spans if s.service == "sagaline-orchestrator"}
    assert first < orchestrators, "the restarted orchestrator's spans joined the same trace"
    step = one(spans, "saga.step charge_payment", **{"saga.attempt": 1})
    assert step.instance not in first, "the step span was ended by the new process"
    send = one(spans, f"send {traced.topics.commands('payment')}", **CHARGE_1)
    assert send.instance in first, "the command was published before the crash"
    assert send.parent_id == step.span_id, "and named the step span the new process ended"
    assert one(spans, f"saga.end {SAGA_TYPE}").attributes["saga.outcome"] == "completed"


def scrape(port: int) -> dict[tuple[str, Labels], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


async def start_twice(traced: Traced, saga: PlaceOrder) -> None:
    """The same start message (same message id) twice, then a record that is not JSON at all."""
    settings = traced.stack.settings
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        headers = Envelope(message_id=str(uuid.uuid4()), type=saga.type_name(), saga_id=saga.saga_id).to_headers()
        for _ in range(2):
            await producer.send_and_wait(
                settings.topics.start,
                value=body_bytes(encode_body(saga)),
                key=(saga.saga_id or "").encode(),
                headers=kafka_headers(headers),
            )
        await producer.send_and_wait(settings.topics.start, value=b"{not json", key=b"poison")
    finally:
        await producer.stop()


async def test_prometheus_endpoints_count_a_known_run(traced: Traced) -> None:
    db, ports, run = traced.db, traced.metrics_ports, uuid.uuid4().hex[:6]
    await reconfigure(traced, "payment", SAGALINE_PAYMENT_GLITCH_RATE="0")
    before = {name: scrape(ports[name]) for name in ("orchestrator", "order", "inventory")}
    ok = [order(f"m{run}-ok-{i}") for i in range(2)]
    await send_orders(traced.stack.settings, [*ok, order(f"m{run}-aq", country="AQ")])
    await start_twice(traced, order(f"m{run}-dup"))
    for saga_id, status in [(ok[0].order_id, "completed"), (ok[1].order_id, "completed"), (f"m{run}-dup", "completed")]:
        await wait_status(db, saga_id, status)
    await wait_status(db, f"m{run}-aq", "compensated")

    # A step timeout: shipment is down when its command goes out, and back after the resend.
    shipment = traced.cluster.services["shipment"]
    await asyncio.to_thread(shipment.stop)
    slow = f"m{run}-slow"
    await send_orders(traced.stack.settings, [order(slow)])
    await wait_status(db, slow, "running")

    async def timed_out() -> None:
        async with db.connect() as conn:
            found = (
                await conn.execute(
                    text("SELECT count(*) FROM sagaline.saga_event WHERE saga_id = :id AND type = 'timed_out'"),
                    {"id": slow},
                )
            ).scalar_one()
        assert found == 1

    await eventually(timed_out, timeout_s=50)
    await asyncio.to_thread(shipment.start)
    await asyncio.to_thread(shipment.wait_ready)
    await wait_status(db, slow, "completed")

    # Every charge fails retryably: the saga retries up to the policy's limit, then compensates.
    await reconfigure(traced, "payment", SAGALINE_PAYMENT_GLITCH_RATE="1.0")
    glitchy = f"m{run}-glitch"
    await send_orders(traced.stack.settings, [order(glitchy)])
    await wait_status(db, glitchy, "compensated")

    kind: Labels = (("saga_type", SAGA_TYPE),)
    charge_retries = ORDER_FULFILLMENT.step("charge_payment").retry.maximum_attempts - 1
    start_topic = traced.topics.start
    expected_orchestrator = {
        ("sagaline_sagas_started_total", kind): 6,
        ("sagaline_sagas_completed_total", kind): 4,
        ("sagaline_sagas_compensated_total", kind): 2,
        ("sagaline_retries_total", (*kind, ("step", "charge_payment"))): charge_retries,
        ("sagaline_retries_total", (*kind, ("step", "schedule_shipment"))): 1,
        ("sagaline_timeouts_total", (*kind, ("step", "schedule_shipment"))): 1,
        ("sagaline_inbox_duplicates_total", (("consumer", "orchestrator"),)): 2,  # the start; the reply answered twice
        ("sagaline_step_latency_seconds_count", (("phase", "forward"), *kind, ("step", "charge_payment"))): 6 + 5,
        ("sagaline_step_latency_seconds_count", (("phase", "forward"), *kind, ("step", "schedule_shipment"))): 5,
        ("sagaline_step_latency_seconds_count", (("phase", "compensation"), *kind, ("step", "create_order"))): 2,
    }

    def delta(service: str, after: dict[tuple[str, Labels], float], key: tuple[str, Labels]) -> float:
        return after.get(key, 0.0) - before[service].get(key, 0.0)

    async def counted() -> None:
        after = scrape(ports["orchestrator"])
        assert {key: delta("orchestrator", after, key) for key in expected_orchestrator} == expected_orchestrator
        dead = {
            k: v - before["orchestrator"].get(k, 0) for k, v in after.items() if k[0] == "sagaline_dlq_messages_total"
        }
        assert sum(v for (_, labels), v in dead.items() if ("topic", start_topic) in labels) == 1
        assert after.get(("sagaline_sagas_failed_total", kind), 0) == before["orchestrator"].get(
            ("sagaline_sagas_failed_total", kind), 0
        )
        assert after[("sagaline_outbox_backlog", (("outbox", "sagaline"),))] == 0
        assert after[("sagaline_relay_lag_seconds", (("outbox", "sagaline"),))] == 0
        # Replies each participant's relay published: order 2 per saga, inventory 1 per saga plus releases.
        replies = ("sagaline_outbox_published_total", (("topic", traced.topics.replies),))
        order_after = scrape(ports["order"])
        assert delta("order", order_after, replies) == 12
        # Published from memory after the commit, and still timed from the commit.
        delay = ("sagaline_relay_delay_seconds_count", (("topic", traced.topics.replies),))
        assert delta("order", order_after, delay) == 12
        assert delta("inventory", scrape(ports["inventory"]), replies) == 6 + 2
        shipment_after = scrape(ports["shipment"])  # restarted above: counts since then
        assert shipment_after[("sagaline_inbox_duplicates_total", (("consumer", "shipment"),))] == 1

    await eventually(counted, timeout_s=15)
