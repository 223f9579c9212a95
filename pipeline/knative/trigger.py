"""A Kafka-broker Trigger, emulated: its own consumer group on the whole broker topic, filter, deliver, reply.

knative.md §2.3: every Trigger reads every event of the broker topic and filters after consuming
(a non-matching event is handled: nothing to produce). §2.4: unordered by default, at most
max.poll.records = 50 in flight. §1.6: retries on >=500, 404, 408, 409, 429 and transport errors with
backoffDelay × 2^n, then the dead-letter sink with knativeerror* extensions. §2.5: a reply event is
produced straight into the broker topic; an empty reply is success; a non-CloudEvent body fails.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import Message

from pipeline import events
from pipeline.delivery import (
    DispatcherConfig, HttpSender, KafkaDispatcher, Produce, RecordProducer, RetryPolicy, SendResult,
)
from pipeline.delivery.binary import http_headers_of_record, record_of_http
from pipeline.kafka import KafkaSettings
from pipeline.topology import Stage, Topology

log = logging.getLogger("lagduel.knative.trigger")


@dataclass
class TriggerStats:
    matched: int = 0
    processed: int = 0
    """Matched events finished: reply produced, filtered (no reply) or dead-lettered."""
    retries: int = 0
    dead_lettered: int = 0
    errors: int = 0
    unrouted: int = 0
    """Events of a type no Trigger of the pipeline subscribes to, e.g. a non-CloudEvent record the KafkaSource
    wrapped as `dev.knative.kafka.event` (§1.3). Upstream every Trigger filters them out silently; here the
    output Trigger counts them, so they are filtered but never unaccounted for."""


class TriggerDispatcher:
    """Delivers the events of one type to a subscriber: a stage's Service, or (stage None) the output KafkaSink."""

    def __init__(self, topology: Topology, settings: KafkaSettings, name: str, group: str, event_type: str,
                 stage: Stage | None, sender: HttpSender | None, subscriber_url: str | None, namespace: str,
                 delivery_stage: Stage, ordering: str = "unordered", stats: TriggerStats | None = None,
                 producer: RecordProducer | None = None) -> None:
        self.topology, self.name, self.event_type = topology, name, event_type
        self.stage, self.sender, self.url, self.namespace = stage, sender, subscriber_url, namespace
        self.policy = RetryPolicy.from_delivery(delivery_stage.delivery)
        self.timeout_s = delivery_stage.timeout_s
        self.stats = stats or TriggerStats()  # shared by the restarts of one Trigger's dispatcher
        self._ingress_s = topology.emulation.hops.broker_ingress_ms / 1000
        self._type = event_type.encode()
        # Upstream Trigger groups start at `latest` (§2.3); here the settings' `earliest` applies, so events a
        # stage replies before the group's first assignment on a fresh broker topic are not skipped.
        config = DispatcherConfig(group=group, topics=(topology.broker_topic,), ordering=ordering,  # type: ignore[arg-type]
                                  max_in_flight=topology.emulation.knative.trigger_max_in_flight,
                                  commit_interval_s=topology.emulation.commit_interval_s,
                                  consumer=(("fetch.wait.max.ms", topology.emulation.fetch_wait_ms),),
                                  producer=(("linger.ms", topology.emulation.producer_linger_ms),),
                                  client_id=f"kafka-broker-dispatcher-{name}",
                                  skip=lambda msg: self._filtered(msg.headers()),
                                  dead_letter_topic=topology.dead_letter_topic,
                                  stage=stage.name if stage else "output")
        # The types some Trigger of the pipeline subscribes to; only the output Trigger counts the others.
        self._routed = ({t.encode() for t in (topology.input.type, *(s.output.type for s in topology.stages))}
                        if stage is None else None)
        self.dispatcher = KafkaDispatcher(settings, config, self._handle, producer)

    async def run(self) -> None:
        await self.dispatcher.run()

    async def _handle(self, msg: Message) -> Sequence[Produce]:
        headers = msg.headers()
        if self._filtered(headers):
            return []
        http = http_headers_of_record(headers)
        if http is not None and self.stage is not None:  # binary mode: forwarded header by header (§1.3)
            self.stats.matched += 1
            out = await self._deliver(http, msg.value() or b"", lambda: events.from_kafka(msg.key(), msg.value(), headers))
            self.stats.processed += 1
            return out
        if http is not None and self.stage is None:  # KafkaSink: the binary record as it is
            self.stats.matched += 1
            self.stats.processed += 1
            return [Produce(self.topology.output.topic, events.KafkaRecord(msg.key(), msg.value() or b"", list(headers or ())))]
        try:
            event = events.from_kafka(msg.key(), msg.value(), msg.headers())
            if self._routed is not None and event.get_type().encode() not in self._routed:
                self.stats.unrouted += 1
        except events.EventError as exc:
            # Only CloudEvents are ever written to the broker topic; upstream discards others (§1.6).
            self.stats.errors += 1
            log.warning("trigger %s: skipping %s[%d]@%d: %s", self.name, msg.topic(), msg.partition(), msg.offset(), exc)
            return []
        if event.get_type() != self.event_type:  # filter.attributes.type: exact match
            return []
        self.stats.matched += 1
        try:
            if self.stage is None:  # the KafkaSink: its receiver produces the event into its topic, binary mode
                return [Produce(self.topology.output.topic, events.to_kafka(event, "binary"))]
            headers, body = events.to_http(event, "binary")  # §1.3: HTTP delivery is always binary
            return await self._deliver(headers, body, lambda: event)
        finally:
            self.stats.processed += 1

    async def _deliver(self, headers: dict[str, str], body: bytes,
                       event: Callable[[], events.CloudEvent]) -> Sequence[Produce]:
        """POST to the subscriber; the reply goes back through the broker ingress into the broker topic (§2.5).
        `event` decodes the original in full, only for a dead letter."""
        assert self.sender is not None and self.url is not None
        headers["prefer"] = "reply"
        headers["kn-namespace"] = self.namespace
        result = await self.sender.send(self.url, headers, body, self.policy, self.timeout_s, on_retry=self._retried)
        if not result.ok:
            return [self._dead_letter(event(), result, self._reason(result))]
        if not result.body:
            return []  # 202 filtered, or 200 without a reply
        record = record_of_http(result.headers, result.body)
        if record is None:
            try:
                record = events.to_kafka(events.from_http(result.headers, result.body), "binary")
            except events.EventError as exc:
                return [self._dead_letter(event(), result, f"reply is not a CloudEvent: {exc}")]
        if self._ingress_s > 0:
            await asyncio.sleep(self._ingress_s)  # modeled hop: reply → broker ingress (emulation.hops)
        return [Produce(self.topology.broker_topic, record)]

    def _filtered(self, headers: Sequence[tuple[str, bytes | None]] | None) -> bool:
        """The filter on a binary record's headers, counting (output Trigger only) a type no Trigger routes.
        Called once per record: by the dispatcher's skip, else by the handler."""
        for name, value in headers or ():
            if name == "ce_type":
                if self._routed is not None and value not in self._routed:
                    self.stats.unrouted += 1
                return value != self._type
        return False

    def _retried(self, _status: int | None) -> None:
        self.stats.retries += 1

    @staticmethod
    def _reason(result: SendResult) -> str:
        if result.status is None:
            return f"no reply after {result.attempts} attempts: {result.error}"
        text = result.body.decode("utf-8", "replace")
        try:
            import orjson

            doc = orjson.loads(result.body)
            if isinstance(doc, dict) and "error" in doc:
                text = str(doc["error"])
        except orjson.JSONDecodeError:
            pass
        return text if result.status == 422 else f"HTTP {result.status} after {result.attempts} attempts: {text}"

    def _dead_letter(self, event: events.CloudEvent, result: SendResult, reason: str) -> Produce:
        assert self.stage is not None
        self.stats.dead_lettered += 1
        dl = events.dead_letter(event, self.stage.name, reason)
        attrs = dict(dl.get_attributes())
        # RecordDispatcherImpl: where it failed, the status and the body (base64, at most 1024 bytes).
        attrs["knativeerrordest"] = self.url
        if result.status is not None:
            attrs["knativeerrorcode"] = str(result.status)
        if result.body:
            attrs["knativeerrordata"] = base64.b64encode(result.body[:1024]).decode()
        return Produce(self.topology.dead_letter_topic, events.to_kafka(events.CloudEvent(attrs, dl.get_data()), "binary"))
