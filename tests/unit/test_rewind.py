"""A consumer whose position lies past the end of the log (the broker lost it) rewinds to the beginning."""

from __future__ import annotations

from aiokafka import TopicPartition

from orchestrator.messaging import rewind_if_past_end


class ConsumerView:
    """The four aiokafka consumer calls the check uses, over fixed positions and high watermarks."""

    def __init__(self, positions: dict[TopicPartition, int], highwaters: dict[TopicPartition, int | None]) -> None:
        self.positions = positions
        self.highwaters = highwaters

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset


async def test_only_partitions_past_their_high_watermark_are_rewound() -> None:
    lost, fine, unknown = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)
    consumer = ConsumerView({lost: 342, fine: 10, unknown: 99}, {lost: 17, fine: 10, unknown: None})
    rewound = await rewind_if_past_end(consumer)
    assert rewound == ["t[0] 342>17"]
    assert consumer.positions == {lost: 0, fine: 10, unknown: 99}
