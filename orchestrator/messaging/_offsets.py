"""Committing consumed offsets in the background instead of once per batch.

A batch's records count as done once their database transaction (or dead letter) is through; their offsets are
committed with whatever else was done within the interval. A crash or rebalance therefore redelivers at most an
interval's worth of records, which the inboxes drop: one broker round trip per interval instead of one per batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from orchestrator.messaging._codec import RecordRef

log = logging.getLogger(__name__)


class OffsetCommitter:
    """``done`` marks records processed; ``run`` commits the next offsets every ``interval_s`` while any
    changed; ``flush`` commits now (on shutdown, before the consumer leaves its group)."""

    def __init__(self, subscriber: Any, *, interval_s: float) -> None:
        self._subscriber = subscriber  # FastStream's; its ``consumer`` is the aiokafka consumer once started
        self._interval_s = interval_s
        self._done: dict[TopicPartition, int] = {}
        self._changed = asyncio.Event()

    def done(self, records: Sequence[RecordRef]) -> None:
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._done[tp] = max(self._done.get(tp, 0), record.offset + 1)
        if records:
            self._changed.set()

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            await asyncio.sleep(self._interval_s)
            await self.flush()

    async def flush(self) -> None:
        self._changed.clear()
        consumer = getattr(self._subscriber, "consumer", None)
        if consumer is None or not self._done:
            return
        done, self._done = self._done, {}
        assigned = consumer.assignment()
        # A partition revoked meanwhile is another member's now: it re-reads from the last commit (the inbox
        # drops what this member already did).
        offsets = {tp: offset for tp, offset in done.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            log.info("offset commit failed (%r); retrying with the next", exc)
            for tp, offset in offsets.items():
                self._done[tp] = max(self._done.get(tp, 0), offset)
            self._changed.set()
