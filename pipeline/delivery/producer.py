"""One librdkafka producer whose delivery reports resolve asyncio futures, shareable by a process's dispatchers.

Knative writes every event into the broker topic through one component, the broker ingress (knative.md
§2.1: one producer per broker topic in the receiver), so its emulation's KafkaSource and Trigger
dispatchers share one producer; the OpenFaaS emulation folds its connectors into the same process and
shares one the same way, so both backends produce alike. A standalone dispatcher (the `lagduel
connector` command) owns one of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.events import KafkaRecord
from pipeline.kafka import KafkaSettings

BROKER_MAX_MESSAGE_BYTES = 1_048_588
"""The broker's `message.max.bytes` default (1 MiB + 12 bytes of batch overhead); the embedded broker keeps it.
Producers take it as theirs, so a record the broker would take is never refused locally by librdkafka's 1,000,000."""
_FULL_QUEUE_WAIT_S = 0.01


def _resolve(fut: asyncio.Future[KafkaError | None], err: KafkaError | None) -> None:
    if not fut.done():
        fut.set_result(err)


class RecordProducer:
    """Produces records and reports each one's outcome (None, or the KafkaError) on a future of the caller's loop.

    Delivery reports are served by a thread blocked in poll(): the event loop wakes only when one arrives.
    """

    def __init__(self, settings: KafkaSettings, overrides: Mapping[str, Any] | None = None) -> None:
        self._producer = Producer(settings.producer(**{"message.max.bytes": BROKER_MAX_MESSAGE_BYTES,
                                                       **dict(overrides or {})}))
        self.thread_ids: list[int] = []
        """Native id of the delivery-report thread, for CPU accounting."""
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._serve_reports, name=f"{settings.client_id}-acks", daemon=True)
        self._pump.start()

    async def produce(self, topic: str, record: KafkaRecord) -> asyncio.Future[KafkaError | None]:
        """Hands the record to librdkafka (waiting while its local queue is full); the future gives the outcome.
        A record refused locally (e.g. too large) is reported on the future as a failed delivery."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[KafkaError | None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Message) -> None:  # runs on the report thread
            loop.call_soon_threadsafe(_resolve, fut, err)

        while True:
            try:
                self._producer.produce(topic, record.value, record.key, headers=record.headers, on_delivery=delivered)
                return fut
            except BufferError:  # local queue full: the report thread drains it
                await asyncio.sleep(_FULL_QUEUE_WAIT_S)
            except KafkaException as exc:
                fut.set_result(exc.args[0])
                return fut

    def close(self, flush_s: float = 10.0) -> None:
        """Deliver what is queued (up to `flush_s`; 0 drops it, as a crashed pod would), then stop the reports."""
        if self._stop.is_set():
            return
        if flush_s > 0:
            self._producer.flush(flush_s)
        self._stop.set()
        self._pump.join()

    def _serve_reports(self) -> None:
        self.thread_ids.append(threading.get_native_id())
        while not self._stop.is_set():
            self._producer.poll(0.05)
