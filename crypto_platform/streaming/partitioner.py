"""kafka-python's key partitioning, computed once per key: ticks have a handful of keys."""

from __future__ import annotations

from typing import Any

from kafka.partitioner import DefaultPartitioner

# Symbols are the keys: a bound well above any real list, so the cache can never grow unbounded.
MAX_CACHED_KEYS = 10_000


class CachedKeyPartitioner(DefaultPartitioner):
    """The default partitioner's choice (murmur2 of the key, as the Java client), remembered.

    The default recomputes a pure-Python murmur2 and sorts the partition list for every
    record: about 12 % of the producer's CPU in a py-spy profile. The choice depends only
    on the key and the topic's partitions, so it is cached per key and partition count: a
    topic given more partitions gets fresh choices, exactly as the default would make.
    """

    def __init__(self) -> None:
        self._chosen: dict[tuple[str, bytes, int], int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        cache_key = (topic, bytes(serialized_key), len(partitions))
        chosen = self._chosen.get(cache_key)
        if chosen is None:
            if len(self._chosen) >= MAX_CACHED_KEYS:
                self._chosen.clear()
            chosen = super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            self._chosen[cache_key] = chosen
        return chosen
