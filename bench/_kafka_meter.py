"""Messages written to our topics, from the fetch high watermarks (the embedded broker's ``end_offsets`` is wrong
after batched produces; the high watermark in a fetch response is right)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition


class KafkaMeter:
    """``await total()`` is the sum of every partition's high watermark. Each call opens a short-lived consumer
    that fetches once per partition from the last known watermark, so nothing is read between calls."""

    def __init__(self, bootstrap_servers: str, topics: Sequence[str]) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topics = list(topics)
        self._watermarks: dict[TopicPartition, int] = {}

    async def total(self, timeout_s: float = 15) -> int:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            max_partition_fetch_bytes=64 * 1024,
        )
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public way to refresh
            partitions = [
                TopicPartition(topic, p)
                for topic in self._topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, self._watermarks.get(tp, 0))
            deadline = time.monotonic() + timeout_s
            while any(consumer.highwater(tp) is None for tp in partitions):
                if time.monotonic() > deadline:
                    raise TimeoutError("no fetch response from every partition; is the broker up?")
                await consumer.getmany(timeout_ms=100, max_records=1)
            self._watermarks = {tp: int(consumer.highwater(tp)) for tp in partitions}
        finally:
            await consumer.stop()
        return sum(self._watermarks.values())
