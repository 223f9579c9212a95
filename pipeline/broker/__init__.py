"""A real Apache Kafka broker for laptops and CI: single-node KRaft, no Docker needed."""

from pipeline.broker.errors import BrokerError
from pipeline.broker.locate import Kafka, open_kafka
from pipeline.broker.process import EmbeddedKafka

__all__ = ["BrokerError", "EmbeddedKafka", "Kafka", "open_kafka"]
