"""Kafka clients: typed settings mapped to librdkafka keys, admin helpers and the one offset reader."""

from pipeline.kafka.admin import BrokerUnavailable, create_topics, delete_topics, wait_for_broker
from pipeline.kafka.groups import GroupMembership
from pipeline.kafka.lag import GroupLag, PartitionLag
from pipeline.kafka.offsets import NO_COMMIT, OffsetReader, OffsetSnapshot
from pipeline.kafka.settings import KafkaSettings

__all__ = [
    "BrokerUnavailable", "GroupLag", "GroupMembership", "KafkaSettings", "NO_COMMIT", "OffsetReader", "OffsetSnapshot", "PartitionLag",
    "create_topics", "delete_topics", "wait_for_broker",
]
