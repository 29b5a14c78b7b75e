"""The gap guard: a forward jump in a partition's offsets sends the consumer back, a bounded number of times."""

from __future__ import annotations

from orchestrator.messaging import RecordRef
from orchestrator.messaging._gaps import GapGuard


def _records(*offsets: int, partition: int = 0) -> list[RecordRef]:
    return [RecordRef(topic="t", partition=partition, offset=o, key=None, value=b"{}", headers=()) for o in offsets]


def _offsets(records: list[RecordRef]) -> list[int]:
    return [r.offset for r in records]


def test_a_jump_withholds_the_rest_of_that_partition_and_seeks_back_to_the_first_missing_offset() -> None:
    guard = GapGuard()
    assert _offsets(guard.admit(_records(0, 1, 2)).records) == [0, 1, 2]
    admitted = guard.admit([*_records(3, 6, 7), *_records(10, 11, partition=1)])
    assert _offsets(admitted.records) == [3, 10, 11], "partition 1 has no history yet: nothing to compare"
    assert admitted.seek == {("t", 0): 4}
    filled = guard.admit(_records(4, 5, 6, 7))
    assert _offsets(filled.records) == [4, 5, 6, 7]
    assert filled.seek == {}
    assert guard.refetched == 1


def test_a_gap_that_stays_is_accepted_after_the_retries() -> None:
    guard = GapGuard(retries=2)
    guard.admit(_records(0))
    assert guard.admit(_records(5)).seek == {("t", 0): 1}
    assert guard.admit(_records(5)).seek == {("t", 0): 1}
    accepted = guard.admit(_records(5, 6))
    assert (accepted.seek, _offsets(accepted.records)) == ({}, [5, 6])
    assert guard.admit(_records(9)).seek == {("t", 0): 7}, "a later gap is re-fetched again"


def test_reading_older_offsets_again_is_no_gap() -> None:
    guard = GapGuard()
    guard.admit(_records(0, 1, 2, 3))
    rewound = guard.admit(_records(0, 1))
    assert (_offsets(rewound.records), rewound.seek) == ([0, 1], {})
