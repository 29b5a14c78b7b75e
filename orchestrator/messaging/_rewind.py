"""Recovering consumers whose position lies past the end of a partition.

A broker that loses its log (the embedded broker keeps it in memory; a Kafka cluster restored from an old
snapshot, or a topic deleted and re-created) starts every partition at offset 0 again, while a running consumer
keeps its old, larger position — and commits it. It would then wait for offsets that only arrive after
everything in between was written, silently skipping all of it. Kafka's own answer to a position out of range
(auto_offset_reset) does not fire here, because the broker does not report it. So each service checks: a
position beyond the partition's high watermark means the log was reset, and the consumer rewinds to the
beginning. Replays are harmless: every consumer has an inbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


async def rewind_if_past_end(consumer: Any) -> list[str]:
    """Seek every assigned partition whose position exceeds its high watermark to the beginning."""
    rewound: list[str] = []
    for tp in list(consumer.assignment()):
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        with contextlib.suppress(KafkaError, AssertionError, RuntimeError):
            position = await asyncio.wait_for(consumer.position(tp), timeout=2)
            if position > highwater:
                consumer.seek(tp, 0)
                rewound.append(f"{tp.topic}[{tp.partition}] {position}>{highwater}")
    if rewound:
        log.warning("positions past the end of the log (broker lost it?): rewound %s", ", ".join(rewound))
    return rewound
