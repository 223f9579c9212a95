"""Kafka clients: typed settings mapped to librdkafka keys, and admin helpers."""

from pipeline.kafka.admin import (
    BrokerUnavailable, GroupLag, LagReader, PartitionLag, consumer_lag, create_topics, delete_topics, wait_for_broker,
)
from pipeline.kafka.settings import KafkaSettings

__all__ = [
    "BrokerUnavailable", "GroupLag", "KafkaSettings", "LagReader", "PartitionLag",
    "consumer_lag", "create_topics", "delete_topics", "wait_for_broker",
]
