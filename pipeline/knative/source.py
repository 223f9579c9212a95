"""KafkaSource, emulated: the input topic into the broker topic, every record as a CloudEvent.

The record → CloudEvent mapping is the upstream dispatcher's (knative.md §1.3): CloudEvent records
pass through unchanged, anything else is wrapped as `dev.knative.kafka.event`; either way the
partition and offset are added as extensions. The sink is the Broker, so the event is produced
straight into the broker topic in binary mode (the broker ingress stores binary, §2.1).
"""

from __future__ import annotations

import asyncio
import base64
import re
import struct
from collections.abc import Sequence
from datetime import datetime, timezone

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from pipeline import events
from pipeline.delivery import DispatcherConfig, KafkaDispatcher, Produce, RecordProducer
from pipeline.kafka import KafkaSettings
from pipeline.knative.manifests import source_group, source_name
from pipeline.topology import Topology

KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
_OVERRIDES = frozenset({"ce_knativekafkapartition", "ce_knativekafkaoffset"})
_HEADER_NAME = re.compile(r"[^a-z0-9]")


def _key_text(key: bytes, key_type: str) -> str:
    """KeyDeserializer.java: string (default), int (4 bytes), float (4 or 8 bytes), byte-array; odd sizes → string."""
    if key_type == "int" and len(key) == 4:
        return str(struct.unpack(">i", key)[0])
    if key_type == "float" and len(key) in (4, 8):
        return repr(struct.unpack(">f" if len(key) == 4 else ">d", key)[0])
    if key_type == "byte-array":
        return base64.b64encode(key).decode()
    return key.decode("utf-8", "replace")


def wrap_record(namespace: str, source: str, topic: str, partition: int, offset: int, key: bytes | None,
                value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None, timestamp_ms: int | None,
                key_type: str = "string") -> events.CloudEvent:
    """knative.md §1.3: the CloudEvent the KafkaSource dispatcher sends for one record."""
    hdrs = list(headers or ())
    if events.is_cloudevent_record(hdrs):
        event = events.from_kafka(key, value, hdrs)  # a CloudEvent is used as-is
        attrs = dict(event.get_attributes())
        data = event.get_data()
    else:
        attrs = {"type": KAFKA_EVENT_TYPE, "source": f"/apis/v1/namespaces/{namespace}/kafkasources/{source}#{topic}",
                 "subject": f"partition:{partition}#{offset}", "id": f"partition:{partition}/offset:{offset}"}
        if timestamp_ms is not None:
            attrs["time"] = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)
        if key:
            attrs["key"] = attrs["partitionkey"] = _key_text(key, key_type)
        for name, raw in hdrs:
            if name.lower() == "content-type":
                if raw is not None:
                    attrs["datacontenttype"] = raw.decode("utf-8", "replace").lower()
            else:
                ext = "kafkaheader" + _HEADER_NAME.sub("", name.lower())
                attrs[ext] = (raw or b"").decode("utf-8", "replace")
        data = value or b""
    # CloudEventOverridesMutator: added to every event, wrapped or not.
    attrs["knativekafkapartition"] = str(partition)
    attrs["knativekafkaoffset"] = str(offset)
    try:
        return events.CloudEvent(attrs, data)
    except Exception as exc:  # an attribute the SDK refuses (e.g. an odd header name)
        raise events.EventError(f"cannot build the CloudEvent of {topic}[{partition}]@{offset}: {exc}") from None


class KafkaSourceDispatcher:
    """One KafkaSource: its own consumer group on the input topic, ordered by default (knative.md §1.2)."""

    def __init__(self, topology: Topology, settings: KafkaSettings, namespace: str | None = None,
                 ordering: str = "ordered", producer: RecordProducer | None = None) -> None:
        self.topology = topology
        self.namespace = namespace or topology.namespace
        self.name = source_name(topology)
        self.errors = 0
        self.processed = 0
        self._ingress_s = topology.emulation.hops.broker_ingress_ms / 1000
        config = DispatcherConfig(group=source_group(self.namespace, topology), topics=(topology.input.topic,),
                                  ordering=ordering,  # type: ignore[arg-type]
                                  commit_interval_s=topology.emulation.commit_interval_s,
                                  consumer=(("fetch.wait.max.ms", topology.emulation.fetch_wait_ms),),
                                  producer=(("linger.ms", topology.emulation.producer_linger_ms),),
                                  client_id=f"kafka-source-{self.name}",
                                  dead_letter_topic=topology.dead_letter_topic, stage="source")
        self.dispatcher = KafkaDispatcher(settings, config, self._handle, producer)

    async def run(self) -> None:
        await self.dispatcher.run()

    async def _handle(self, msg: Message) -> Sequence[Produce]:
        out = self._convert(msg)
        if self._ingress_s > 0 and out[0].topic == self.topology.broker_topic:
            await asyncio.sleep(self._ingress_s)  # modeled hop: KafkaSource → broker ingress (emulation.hops)
        self.processed += 1
        return out

    def _convert(self, msg: Message) -> list[Produce]:
        headers = msg.headers() or []
        if any(name == "ce_specversion" for name, _ in headers):
            # A binary-mode CloudEvent passes through as-is (§1.3), plus the partition and offset extensions:
            # the same record wrap_record's SDK round trip gives, header by header.
            kept = [(n, v) for n, v in headers if n not in _OVERRIDES and v is not None]
            key = next((v for n, v in kept if n == "ce_partitionkey"), msg.key())
            kept += [("ce_knativekafkapartition", str(msg.partition()).encode()),
                     ("ce_knativekafkaoffset", str(msg.offset()).encode())]
            return [Produce(self.topology.broker_topic, events.KafkaRecord(key, msg.value() or b"", kept))]
        ts_type, ts = msg.timestamp()
        try:
            event = wrap_record(self.namespace, self.name, msg.topic(), msg.partition(), msg.offset(), msg.key(),
                                msg.value(), msg.headers(), None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts)
        except events.EventError as exc:
            # A record claiming to be a CloudEvent but malformed: upstream wraps it as an invalid event;
            # here it goes to the dead-letter topic with the reason, never silently dropped.
            self.errors += 1
            return [Produce(self.topology.dead_letter_topic,
                            events.poison_record(msg.key(), msg.value(), msg.headers(), "source", str(exc)))]
        return [Produce(self.topology.broker_topic, events.to_kafka(event, "binary"))]
