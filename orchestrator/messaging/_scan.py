"""Scanning a whole topic for the records one wants, without holding the rest (``saga why`` over the DLQ)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from orchestrator.messaging._reader import FETCH_WAIT_MS, assigned_reader


@dataclass
class TopicScan:
    """What a scan kept, how many records it read, and whether it reached the end of every partition."""

    kept: list[Any] = field(default_factory=list)
    scanned: int = 0
    complete: bool = False


async def scan_topic(
    bootstrap_servers: str,
    topic: str,
    keep: Callable[[Any], bool],
    *,
    timeout_s: float,
) -> TopicScan:
    """Reads ``topic`` from the beginning to the end it has when each partition is first fetched (its high
    watermark, which this broker reports correctly, unlike ``end_offsets``), keeping the records ``keep`` admits.
    Stops at ``timeout_s`` with ``complete`` False. Commits nothing, joins no group."""
    scan = TopicScan()
    async with assigned_reader(bootstrap_servers, topic) as (consumer, partitions):
        if not partitions:
            scan.complete = True
            return scan
        await consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=FETCH_WAIT_MS * 4)
            for records in batch.values():
                scan.scanned += len(records)
                scan.kept += [r for r in records if keep(r)]
            for tp in partitions:
                if tp not in ends and (highwater := consumer.highwater(tp)) is not None:
                    ends[tp] = highwater
            if len(ends) == len(partitions) and all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                scan.complete = True
                break
    return scan
