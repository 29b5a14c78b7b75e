"""Topics come only from Sagaline's own topic creation, with the configured partition count, and consumers read
every partition a topic has, over a real broker. After the embedded broker restarted with its memory lost, a
client asking about a topic used to have it auto-created with four partitions; the services' consumers kept
partition 0 only (that broker's groups hand a rejoining member its old assignment) and 791 of 2,000 sagas of a
chaos run failed waiting for commands and replies nobody read."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from orchestrator.launch import RELAY, SERVICES, Stack, plan_orders, wait_terminal
from orchestrator.launch._driver import send_orders
from orchestrator.messaging import ensure_topics, make_producer
from orchestrator.persistence import create_engine
from orchestrator.settings import Settings
from tests.integration.helpers import until
from tests.support.infra import Infra

pytestmark = pytest.mark.integration


async def _topics(bootstrap_servers: str) -> dict[str, int]:
    """Partition counts by topic, as the broker reports them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        names = await admin.list_topics()
        described = await admin.describe_topics(names)
        return {topic["topic"]: len(topic["partitions"]) for topic in described}
    finally:
        await admin.close()


async def test_a_send_to_a_missing_topic_waits_for_it_instead_of_creating_it(infra: Infra) -> None:
    settings = Settings(
        kafka_bootstrap_servers=infra.bootstrap_servers, topic_prefix=f"auto{uuid.uuid4().hex[:6]}.", topic_partitions=3
    )
    topic = settings.topics.events
    producer = make_producer(settings)
    await producer.start()
    try:
        sending = asyncio.create_task(producer.send_and_wait(topic, b"{}", key=b"saga-1"))
        await asyncio.sleep(1.5)
        assert not sending.done()
        assert topic not in await _topics(infra.bootstrap_servers)

        await ensure_topics(settings, [topic])
        sent = await asyncio.wait_for(sending, timeout=20)
    finally:
        await producer.stop()
    assert sent.topic == topic
    assert (await _topics(infra.bootstrap_servers))[topic] == 3


@pytest.mark.timeout(600)
async def test_sagas_complete_after_the_broker_comes_back_with_other_partition_counts(tmp_path: Path) -> None:
    # Its own embedded stack: the test restarts the broker.
    stack = Stack(workdir=tmp_path / "stack", services=(*SERVICES, RELAY))
    try:
        await stack.start()
        assert stack.database_url is not None
        assert stack.broker is not None
        engine = create_engine(stack.database_url, pool_size=2)
        planned = plan_orders(100, failure_share=0.2)
        before, after = planned[:50], planned[50:]
        await send_orders(stack.settings, [p.command for p in before])
        assert (await wait_terminal(engine, [p.command.order_id for p in before], timeout_s=120)).in_flight == 0

        await asyncio.to_thread(stack.broker.restart)
        # Someone else (an old client, a tool) re-creates the topics first, with more partitions than the stack
        # uses; the services' topic guard then finds them present, and the consumers' old assignments miss some.
        more = stack.settings.topic_partitions + 4
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(t, more, 1) for t in stack.settings.topics.all()])
        finally:
            await admin.close()

        await send_orders(stack.settings, [p.command for p in after])
        progress = await wait_terminal(engine, [p.command.order_id for p in after], timeout_s=180)
        await engine.dispose()
        # With partitions taken in turn, the sagas can all end on partitions the old assignments hold, before a
        # service has seen the others unassigned for five checks: wait for that instead of stopping first.
        await until(lambda: REJOINED in _logs(tmp_path), timeout_s=30, interval_s=0.5)
    finally:
        stack.stop()
    assert progress.in_flight == 0, f"sagas not terminal: {progress.by_status}"
    assert progress.by_status == dict(Counter(p.scenario.expected_status for p in after))
    assert REJOINED in _logs(tmp_path)


REJOINED = "stayed unassigned; rejoining the group as a new member"


def _logs(tmp_path: Path) -> str:
    return "".join(path.read_text() for path in (tmp_path / "stack" / "logs").glob("*.log"))
