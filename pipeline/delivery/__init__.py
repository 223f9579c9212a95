"""At-least-once Kafka → HTTP dispatch: the engine under the Knative dispatchers and the OpenFaaS connector.

A record counts as handled only when the handler has finished with it and every record it
asked for is acknowledged by the broker; offsets are committed as the contiguous handled prefix.
"""

from pipeline.delivery.dispatcher import (
    DispatcherConfig, DispatcherCrashed, DispatcherStats, Handler, KafkaDispatcher, Produce,
)
from pipeline.delivery.supervisor import Supervised
from pipeline.delivery.offsets import OffsetTracker
from pipeline.delivery.producer import RecordProducer
from pipeline.delivery.retry import RetryPolicy
from pipeline.delivery.sender import HttpSender, Route, RouteTimeout, SendResult

__all__ = [
    "DispatcherConfig", "DispatcherCrashed", "DispatcherStats", "Handler", "HttpSender", "KafkaDispatcher", "OffsetTracker",
    "Produce", "RecordProducer", "RetryPolicy", "Route", "RouteTimeout", "SendResult", "Supervised",
]
