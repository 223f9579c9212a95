"""Kafka clients: typed settings mapped to librdkafka keys, admin helpers and the one offset reader."""

from pipeline.kafka.admin import BrokerUnavailable, TopicError, TopicPlan, create_topics, delete_topics, wait_for_broker
from pipeline.kafka.groups import GroupMembership
from pipeline.kafka.lag import GroupLag, PartitionLag
from pipeline.kafka.offsets import NO_COMMIT, OffsetReader, OffsetSnapshot
from pipeline.kafka.settings import ClientConfigError, KafkaSettings, read_client_config

__all__ = [
    "BrokerUnavailable", "ClientConfigError", "GroupLag", "GroupMembership", "KafkaSettings", "NO_COMMIT", "OffsetReader", "OffsetSnapshot", "PartitionLag",
    "TopicError", "TopicPlan",
    "create_topics", "delete_topics", "read_client_config", "wait_for_broker",
]
