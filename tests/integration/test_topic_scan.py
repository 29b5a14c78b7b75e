"""Scanning a topic over the real broker: every record read once up to the end, only the wanted ones kept, and
a scan cut short by its time limit says so."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.messaging import ensure_topics, make_producer, scan_topic
from orchestrator.settings import Settings
from tests.support.infra import Infra

pytestmark = pytest.mark.integration


async def _topic_with(infra: Infra, keys: list[str]) -> tuple[Settings, str]:
    settings = Settings(kafka_bootstrap_servers=infra.bootstrap_servers, topic_partitions=3)
    topic = f"scan-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    producer = make_producer(settings)
    await producer.start()
    try:
        for key in keys:
            await producer.send(topic, value=key.encode(), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return settings, topic


async def test_a_scan_reads_every_partition_to_its_end_and_keeps_only_what_is_asked(infra: Infra) -> None:
    keys = [f"saga-{i % 40}" for i in range(600)]
    settings, topic = await _topic_with(infra, keys)

    scan = await scan_topic(settings.kafka_bootstrap_servers, topic, lambda r: r.key == b"saga-7", timeout_s=30)

    assert (scan.complete, scan.scanned) == (True, 600)
    assert [r.value for r in scan.kept] == [b"saga-7"] * keys.count("saga-7")


async def test_an_empty_topic_is_scanned_completely_and_a_cut_short_scan_says_so(infra: Infra) -> None:
    settings, empty = await _topic_with(infra, [])
    nothing = await scan_topic(settings.kafka_bootstrap_servers, empty, lambda _r: True, timeout_s=30)
    assert (nothing.complete, nothing.scanned, nothing.kept) == (True, 0, [])

    settings, full = await _topic_with(infra, [f"k{i}" for i in range(50)])
    cut = await scan_topic(settings.kafka_bootstrap_servers, full, lambda _r: True, timeout_s=0)
    assert cut.complete is False
    assert cut.scanned < 50
