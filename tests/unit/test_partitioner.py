"""Our partitioner chooses exactly as aiokafka's (and the Java client's) default does."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.messaging._partitioner import KeyHashPartitioner


@given(key=st.binary(min_size=0, max_size=64), partitions=st.integers(min_value=1, max_value=64))
def test_a_keyed_record_goes_where_the_default_partitioner_sends_it(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    expected = DefaultPartitioner()(key, all_partitions, all_partitions)
    assert KeyHashPartitioner()(key, all_partitions, all_partitions) == expected
    assert KeyHashPartitioner()(key, all_partitions, all_partitions) == expected  # and again, remembered


def test_the_java_clients_hash_of_a_known_key() -> None:
    # Kafka's UtilsTest: murmur2("21") == -973932308, so its positive part decides the partition
    expected = (-973932308 & 0x7FFFFFFF) % 12
    assert KeyHashPartitioner()(b"21", list(range(12)), []) == expected


def test_one_partition_and_unkeyed_records() -> None:
    assert KeyHashPartitioner()(b"any", [0], [0]) == 0
    assert KeyHashPartitioner()(None, [0, 1, 2], [2]) == 2
    assert KeyHashPartitioner()(None, [0, 1, 2], []) in {0, 1, 2}
