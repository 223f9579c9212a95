"""The Kafka connector of one function: the stage's input topic → gateway `/function/<stage>` → output topic.

OpenFaaS CE has no Kafka trigger (openfaas-keda.md §4.1), so lagduel brings its own, built on
`pipeline.delivery`: the stage's own consumer group (whose lag KEDA reads, §8), bounded in-flight
invocations (ordered: one per partition; unordered: `concurrency × max_replicas` by default),
retries of 429 (watchdog max_inflight, §1.3), 5xx and timeouts with exponential backoff, the
reply produced to the output topic, rejected and exhausted events dead-lettered with the reason.
Offsets are committed only below events fully handled (unlike the OSS connector, which marks
every response as processed, §4.3).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from confluent_kafka import Message
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from pipeline import events
from pipeline.delivery import (
    DispatcherConfig, DispatcherStats, HttpSender, KafkaDispatcher, Produce, RecordProducer, RetryPolicy, SendResult,
)
from pipeline.delivery.binary import http_headers_of_record, record_of_http
from pipeline.delivery.retry import CONNECTOR_RETRYABLE
from pipeline.kafka import KafkaSettings
from pipeline.topology import Stage, Topology

log = logging.getLogger("lagduel.connector")
# 429 is back-pressure (watchdog max_inflight met), not failure: it has its own budget, as the Pro
# queue-worker's max_retry_attempts (100, openfaas-keda.md §4.5), so a burst that outruns the replicas
# waits for the scale-up instead of exhausting the delivery retries. The OSS connector-sdk does not retry
# at all (§4.3: "There are no retry mechanisms at present"). In the emulation the connector waits for a
# replica slot to free (`Throttle`); standalone it has no view of the replicas and backs off, capped.
THROTTLE_RETRIES = 100
THROTTLE_MAX_WAIT_S = 2.0
Throttle = Callable[[], Awaitable[None]]
"""Returns when a retry after a 429 may find a free slot."""


def connector_group(topology: Topology, stage: Stage) -> str:
    """The stage's own consumer group: the group whose lag the stage's ScaledObject watches."""
    return f"lagduel-connector-{topology.pipeline}-{stage.name}"


@dataclass(frozen=True)
class ConnectorConfig:
    stage: Stage
    group: str
    dead_letter_topic: str
    gateway_url: str
    max_in_flight: int
    commit_interval_s: float = 1.0
    timeout_s: float = 30.0
    linger_ms: float | None = None
    """The producer's linger.ms; None: the Kafka settings' own."""
    fetch_wait_ms: float | None = None
    """The consumer's fetch.wait.max.ms; None: the Kafka settings' own."""

    @classmethod
    def for_stage(cls, topology: Topology, stage: str, gateway_url: str, max_in_flight: int | None = None,
                  commit_interval_s: float = 1.0) -> ConnectorConfig:
        st = topology.stage(stage)
        return cls(st, connector_group(topology, st), topology.dead_letter_topic, gateway_url.rstrip("/"),
                   max_in_flight or st.concurrency * st.max_replicas, commit_interval_s,
                   # §2: exec_timeout <= gateway upstream_timeout; wait for the function's own limit plus slack.
                   st.timeout_s + 5.0, topology.emulation.producer_linger_ms, topology.emulation.fetch_wait_ms)

    @property
    def function_url(self) -> str:
        return f"{self.gateway_url}/function/{self.stage.name}"


class ConnectorMetrics:
    """Prometheus series on an explicit registry, plus plain counts for the backend's status."""

    def __init__(self, function: str, registry: CollectorRegistry | None = None) -> None:
        self.function = function
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._invocations = Counter("lagduel_connector_invocations_total", "Function invocations by HTTP status",
                                    ["function", "code"], registry=r)
        self._retries = Counter("lagduel_connector_retries_total", "Invocations retried", ["function"], registry=r)
        self._dead = Counter("lagduel_connector_dead_lettered_total", "Events sent to the dead-letter topic",
                             ["function", "cause"], registry=r)
        self.codes: Tally[str] = Tally()
        self.retries = 0
        self.dead_lettered = 0
        self.processed = 0

    def invoked(self, status: int | None) -> None:
        code = str(status) if status is not None else "transport"
        self.codes[code] += 1
        self._invocations.labels(self.function, code).inc()

    def retried(self, status: int | None) -> None:
        self.invoked(status)
        self.retries += 1
        self._retries.labels(self.function).inc()

    def dead_letter(self, cause: str) -> None:
        self.dead_lettered += 1
        self._dead.labels(self.function, cause).inc()

    def watch(self, stats: Callable[[], DispatcherStats]) -> None:
        """Export the dispatcher's live counts, read at scrape time."""
        self.registry.register(_DispatchCollector(self.function, stats))


class _DispatchCollector:
    def __init__(self, function: str, stats: Callable[[], DispatcherStats]) -> None:
        self.function = function
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s, fn = self.stats(), [self.function]
        in_flight = GaugeMetricFamily("lagduel_connector_in_flight", "Invocations in flight", labels=["function"])
        in_flight.add_metric(fn, s.in_flight)
        consumed = CounterMetricFamily("lagduel_connector_consumed", "Events consumed", labels=["function"])
        consumed.add_metric(fn, s.consumed)
        handled = CounterMetricFamily("lagduel_connector_handled", "Events fully handled (outputs acknowledged)",
                                      labels=["function"])
        handled.add_metric(fn, s.handled)
        commit = GaugeMetricFamily("lagduel_connector_commit_position", "Committed offset per partition",
                                   labels=["function", "topic", "partition"])
        for (topic, partition), offset in list(s.committed.items()):
            commit.add_metric([self.function, topic, str(partition)], offset)
        yield from (in_flight, consumed, handled, commit)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one event came to: produce these, and dead-letter cause (None when delivered or filtered)."""

    produce: tuple[Produce, ...] = ()
    cause: str | None = field(default=None)


def outcome_of(stage: Stage, dead_letter_topic: str, event: events.CloudEvent, result: SendResult) -> Outcome:
    """Pure decision from the function's final answer (after retries) to what goes where."""
    status = result.status
    if status == 200:
        try:
            reply = events.from_http(result.headers, result.body)
        except events.EventError as exc:
            return _dead(stage, dead_letter_topic, event, "invalid_reply", f"function replied with no valid event: {exc}")
        return Outcome((Produce(stage.output.topic, events.to_kafka(reply, "binary")),))
    if status is not None and 200 <= status < 300:
        return Outcome()  # 202: filtered by the stage
    if status == 422:
        return _dead(stage, dead_letter_topic, event, "rejected", _error_text(result.body) or "rejected by the stage")
    if status is not None and 400 <= status < 500 and status != 429:
        return _dead(stage, dead_letter_topic, event, "bad_request",
                     f"HTTP {status}: {_error_text(result.body) or 'request refused'}")
    last = f"HTTP {status}" if status is not None else (result.error or "transport error")
    return _dead(stage, dead_letter_topic, event, "exhausted",
                 f"retries exhausted after {result.attempts} attempts; last: {last}")


def _dead(stage: Stage, topic: str, event: events.CloudEvent, cause: str, reason: str) -> Outcome:
    return Outcome((Produce(topic, events.to_kafka(events.dead_letter(event, stage.name, reason), "binary")),), cause)


def _error_text(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")[:512]
    return str(doc.get("error", doc)) if isinstance(doc, dict) else str(doc)


class FunctionConnector:
    """Runs the dispatch of one stage until `stop()`; then drains in-flight work and commits."""

    def __init__(self, settings: KafkaSettings, config: ConnectorConfig, registry: CollectorRegistry | None = None,
                 sender: HttpSender | None = None, throttle: Throttle | None = None,
                 metrics: ConnectorMetrics | None = None, producer: RecordProducer | None = None) -> None:
        self.config = config
        self._throttle = throttle
        self.metrics = metrics or ConnectorMetrics(config.stage.name, registry)
        stage = config.stage
        # 5xx and timeouts: the stage's delivery budget; 429 is handled in `invoke` (see THROTTLE_RETRIES).
        self.policy = RetryPolicy.from_delivery(stage.delivery, CONNECTOR_RETRYABLE - {429})
        self._sender = sender or HttpSender(max_connections=max(config.max_in_flight, 10))
        self._own_sender = sender is None
        self.dispatcher = KafkaDispatcher(settings, DispatcherConfig(
            group=config.group, topics=(stage.input.topic,), ordering=stage.delivery.ordering,
            max_in_flight=config.max_in_flight, commit_interval_s=config.commit_interval_s,
            client_id=f"lagduel-connector-{stage.name}", dead_letter_topic=config.dead_letter_topic, stage=stage.name,
            consumer=() if config.fetch_wait_ms is None else (("fetch.wait.max.ms", config.fetch_wait_ms),),
            producer=() if config.linger_ms is None else (("linger.ms", config.linger_ms),)), self.handle, producer)
        if metrics is None:
            self.metrics.watch(lambda: self.dispatcher.stats)

    @property
    def stats(self) -> DispatcherStats:
        return self.dispatcher.stats

    async def handle(self, msg: Message) -> list[Produce]:
        try:
            return await self._handle(msg)
        finally:
            self.metrics.processed += 1

    async def _handle(self, msg: Message) -> list[Produce]:
        stage = self.config.stage
        raw_headers = msg.headers()
        http = http_headers_of_record(raw_headers)
        if http is not None:  # binary mode: forwarded header by header, decoded in full only for a dead letter
            result = await self.invoke(http, msg.value() or b"")
            if result.status == 200:
                record = record_of_http(result.headers, result.body)
                if record is not None:
                    return [Produce(stage.output.topic, record)]
            elif result.ok:
                return []  # 202: filtered by the stage
            try:
                event = events.from_kafka(msg.key(), msg.value(), raw_headers)
            except events.EventError as exc:  # a binary envelope the SDK cannot read: dead-letter the bytes
                self.metrics.dead_letter("not_cloudevent")
                return [Produce(self.config.dead_letter_topic, events.poison_record(
                    msg.key(), msg.value(), raw_headers, stage.name, f"HTTP {result.status}; {exc}"))]
        else:
            try:
                event = events.from_kafka(msg.key(), msg.value(), raw_headers)
            except events.EventError as exc:
                self.metrics.dead_letter("not_cloudevent")
                return [Produce(self.config.dead_letter_topic,
                                events.poison_record(msg.key(), msg.value(), raw_headers, stage.name, str(exc)))]
            headers, body = events.to_http(event, "binary")
            result = await self.invoke(headers, body)
        outcome = outcome_of(stage, self.config.dead_letter_topic, event, result)
        if outcome.cause:
            self.metrics.dead_letter(outcome.cause)
        return list(outcome.produce)

    async def invoke(self, headers: dict[str, str], body: bytes) -> SendResult:
        """POST to the gateway: 5xx and timeouts retried per the delivery spec, 429 per the throttle budget."""
        throttled = 0
        while True:
            result = await self._sender.send(self.config.function_url, headers, body, self.policy,
                                             self.config.timeout_s, on_retry=self.metrics.retried)
            if result.status != 429 or throttled >= THROTTLE_RETRIES:
                self.metrics.invoked(result.status)
                return result
            throttled += 1
            self.metrics.retried(429)
            if self._throttle is not None:
                await self._throttle()
            else:
                await asyncio.sleep(min(self.policy.delay(throttled), THROTTLE_MAX_WAIT_S))

    async def run(self) -> None:
        try:
            await self.dispatcher.run()
        finally:
            if self._own_sender:
                await self._sender.aclose()

    def stop(self) -> None:
        self.dispatcher.stop()

    def totals(self) -> dict[str, int]:
        """The counts a supervisor reads: the same as the Prometheus series."""
        s = self.stats
        return {"consumed": s.consumed, "handled": s.handled, "in_flight": s.in_flight,
                "retries": self.metrics.retries, "dead_lettered": self.metrics.dead_lettered}


async def serve(connector: FunctionConnector) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight work and commit (graceful shutdown)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, connector.stop)
    try:
        await connector.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run_connector(connector: FunctionConnector, totals_file: Path | None = None) -> None:
    """The connector process's main: serve on uvloop when installed; on a graceful stop, write the
    final totals to `totals_file` (JSON) so a supervisor keeps exact counts after the exit."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(serve(connector))
    else:
        uvloop.run(serve(connector))
    if totals_file is not None:
        tmp = totals_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(connector.totals()))
        tmp.replace(totals_file)
