"""KafkaDispatcher: consume, hand each record to a handler, produce what it returns, commit in order.

Ordered mode keeps one record in flight per partition (knative.md §1.4, OrderedConsumerVerticle);
unordered mode keeps at most `max_in_flight` records in flight per dispatcher (UnorderedConsumerVerticle,
max.poll.records = 50). Either way the commit position is the contiguous handled prefix (OffsetManager).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from pipeline.delivery.offsets import OffsetTracker
from pipeline.delivery.producer import RecordProducer
from pipeline.events import KafkaRecord, poison_record
from pipeline.kafka import KafkaSettings

log = logging.getLogger("lagduel.delivery")
_IDLE_POLL_S = 0.001
_IDLE_POLL_MAX_S = 0.02
_RETRY_HANDLER_S = 0.5
PERMANENT_PRODUCE_ERRORS = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE, KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError.INVALID_RECORD,
    KafkaError.INVALID_MSG, KafkaError._INVALID_ARG, KafkaError.TOPIC_EXCEPTION, KafkaError.POLICY_VIOLATION,
})
"""Produce errors a retry cannot cure: the output is dead-lettered with the reason instead."""


@dataclass(frozen=True, slots=True)
class Produce:
    """A record the dispatcher must get acknowledged before the input record counts as handled."""

    topic: str
    record: KafkaRecord


Handler = Callable[[Message], Awaitable[Sequence[Produce]]]


@dataclass(frozen=True)
class DispatcherConfig:
    group: str
    topics: tuple[str, ...]
    ordering: Literal["ordered", "unordered"] = "unordered"
    max_in_flight: int = 50
    commit_interval_s: float = 1.0
    client_id: str = "lagduel-dispatcher"
    drain_timeout_s: float = 30.0
    skip: Callable[[Message], bool] | None = None
    """Records this says yes to are handled at once with nothing to produce (a Trigger's filter), no task made."""
    consumer: tuple[tuple[str, Any], ...] = ()
    """librdkafka consumer settings over the KafkaSettings ones, e.g. (("fetch.wait.max.ms", 25),)."""
    producer: tuple[tuple[str, Any], ...] = ()
    """librdkafka settings over the KafkaSettings ones, e.g. (("linger.ms", 0),), of the producer the dispatcher
    makes for itself when none is shared with it."""
    dead_letter_topic: str | None = None
    """Where a record goes that cannot be handled (handler failed `handler_attempts` times) or whose output
    cannot be produced (a permanent error, or `produce_attempts` transient ones). None: retry for ever."""
    stage: str = "dispatcher"
    """The `ldstage` of this dispatcher's dead letters."""
    handler_attempts: int = 5
    produce_attempts: int = 5


@dataclass
class DispatcherStats:
    consumed: int = 0
    in_flight: int = 0
    handled: int = 0
    produced: int = 0
    handler_errors: int = 0
    produce_errors: int = 0
    commit_errors: int = 0
    dead_lettered: int = 0
    """Records this dispatcher itself dead-lettered (handler failures, unproducible outputs)."""
    committed: dict[tuple[str, int], int] = field(default_factory=dict)


class DispatcherCrashed(RuntimeError):
    """The dispatcher died (a crashed pod): in-flight work dropped, nothing committed on the way out."""


class KafkaDispatcher:
    def __init__(self, settings: KafkaSettings, config: DispatcherConfig, handler: Handler,
                 producer: RecordProducer | None = None) -> None:
        """`producer`: one shared with other dispatchers and closed by its owner; None: the dispatcher makes
        its own for each run (with `config.producer`'s settings) and closes it on the way out."""
        self.config = config
        self.stats = DispatcherStats()
        self._settings = settings.with_client_id(config.client_id)
        self._handler = handler
        self._stopping = asyncio.Event()
        self._trackers: dict[tuple[str, int], OffsetTracker] = {}
        self._queues: dict[tuple[str, int], deque[Message]] = {}
        self._busy: set[tuple[str, int]] = set()
        self._paused: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer: Consumer | None = None
        self._shared = producer
        self._producer: RecordProducer | None = producer
        self._waiter: asyncio.Future[None] | None = None
        self._crashed = False
        self.assignment: set[tuple[str, int]] = set()
        """Partitions assigned to this dispatcher now (its group has joined once this is non-empty)."""
        self.thread_ids: list[int] = []
        """Native ids of the threads this dispatcher runs (its own producer's report thread), for CPU accounting."""

    def stop(self) -> None:
        self._stopping.set()
        self._wake()

    def crash(self) -> None:
        """Die as a crashed pod would: drop in-flight work, commit nothing more, leave the group."""
        self._crashed = True
        self.stop()

    def _wake(self) -> None:
        """End the consume loop's idle wait: a record finished (room freed) or stop was asked."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def run(self) -> None:
        self._consumer = Consumer(self._settings.consumer(self.config.group, on_commit=self._on_commit,
                                                          **dict(self.config.consumer)))
        if self._shared is None:
            self._producer = RecordProducer(self._settings, dict(self.config.producer))
            self.thread_ids = self._producer.thread_ids
        self._consumer.subscribe(list(self.config.topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_revoke)
        try:
            await self._consume_loop()
            if self._crashed:
                for task in list(self._tasks):
                    task.cancel()
                raise DispatcherCrashed(f"dispatcher of {self.config.group} crashed")
            await self._drain()
        finally:
            if not self._crashed:
                self._commit(sync=True)
            if self._shared is None and self._producer is not None:
                self._producer.close(flush_s=0 if self._crashed else 10)
            self._consumer.close()
            self.assignment.clear()

    # consumption -------------------------------------------------------------

    async def _consume_loop(self) -> None:
        assert self._consumer is not None
        loop = asyncio.get_running_loop()
        next_commit = loop.time() + self.config.commit_interval_s
        idle = _IDLE_POLL_S
        while not self._stopping.is_set():
            room = self._room()
            msgs = self._consumer.consume(num_messages=room, timeout=0) if room else []
            for msg in msgs:
                self._accept(msg)
            if loop.time() >= next_commit:
                self._commit(sync=False)
                next_commit = loop.time() + self.config.commit_interval_s
            # Back off while idle, so dispatchers sharing a loop don't starve each other's handlers; but a
            # full dispatcher polls again as soon as a record finishes, not after the backoff.
            if msgs:
                idle = _IDLE_POLL_S
                await asyncio.sleep(0)
                continue
            idle = min(idle * 2, _IDLE_POLL_MAX_S)
            self._waiter = loop.create_future()
            timer = loop.call_later(idle, self._wake)
            await self._waiter
            timer.cancel()

    def _room(self) -> int:
        if self.config.ordering == "ordered":
            # knative.md §1.4 OrderedConsumerVerticle: one dispatch in flight per partition; partitions with a
            # backlog are paused before each poll, so one partition never starves the rest. Upstream pauses on
            # any non-empty queue; here a partition is paused once its queue holds max_in_flight records (the
            # same bound on buffering), so records already fetched are not dropped and fetched again per record.
            self._pause_busy()
            return self.config.max_in_flight
        return max(self.config.max_in_flight - self.stats.in_flight - self._buffered(), 0)

    def _pause_busy(self) -> None:
        assert self._consumer is not None
        busy = {tp for tp, q in self._queues.items() if len(q) >= self.config.max_in_flight}
        try:
            if busy - self._paused:
                self._consumer.pause([TopicPartition(t, p) for t, p in busy - self._paused])
            if self._paused - busy:
                self._consumer.resume([TopicPartition(t, p) for t, p in self._paused - busy])
        except KafkaException as exc:
            log.warning("pause/resume failed for %s: %s", self.config.group, exc)
        self._paused = busy

    def _buffered(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def _accept(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error on %s: %s", self.config.group, err)
            return
        tp = (msg.topic(), msg.partition())
        tracker = self._trackers.setdefault(tp, OffsetTracker())
        tracker.track(msg.offset())
        self.stats.consumed += 1
        skip = self.config.skip
        if skip is not None and not self._queues.get(tp) and skip(msg):
            # Nothing queued ahead of it on the partition, so even ordered delivery may finish it now.
            self.stats.handled += 1
            tracker.done(msg.offset())
            return
        if self.config.ordering == "ordered":
            self._queues.setdefault(tp, deque()).append(msg)
            self._kick(tp)
        else:
            self._spawn(self._handle(msg))

    def _kick(self, tp: tuple[str, int]) -> None:
        queue = self._queues.get(tp)
        if tp not in self._busy and queue:
            self._busy.add(tp)
            self._spawn(self._handle_ordered(tp, queue.popleft()))

    async def _handle_ordered(self, tp: tuple[str, int], msg: Message) -> None:
        """One partition's records one after the other, in one task (no task and loop turn per record)."""
        try:
            while True:
                await self._handle(msg)
                queue = self._queues.get(tp)
                if not queue or self._stopping.is_set():
                    break
                msg = queue.popleft()
        finally:
            self._busy.discard(tp)
            self._kick(tp)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # handling ----------------------------------------------------------------

    async def _handle(self, msg: Message) -> None:
        self.stats.in_flight += 1
        try:
            outputs = await self._run_handler(msg)
            await self._produce_all(outputs)
            self.stats.handled += 1
            tracker = self._trackers.get((msg.topic(), msg.partition()))
            if tracker is not None:  # None: the partition was revoked meanwhile; its new owner redelivers
                tracker.done(msg.offset())
        finally:
            self.stats.in_flight -= 1
            self._wake()

    async def _run_handler(self, msg: Message) -> Sequence[Produce]:
        attempts = 0
        while True:
            try:
                return await self._handler(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a handler bug must not lose the record, nor stall its partition
                self.stats.handler_errors += 1
                attempts += 1
                where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
                if self.config.dead_letter_topic is not None and attempts >= self.config.handler_attempts:
                    log.error("handler failed %d times on %s; dead-lettered: %r", attempts, where, exc)
                    self.stats.dead_lettered += 1
                    reason = f"handler failed {attempts} times: {type(exc).__name__}: {exc}"
                    return [Produce(self.config.dead_letter_topic,
                                    poison_record(msg.key(), msg.value(), msg.headers(), self.config.stage, reason))]
                log.exception("handler failed on %s; retrying", where)
                await asyncio.sleep(_RETRY_HANDLER_S)

    async def _produce_all(self, outputs: Sequence[Produce]) -> None:
        for out in outputs:
            attempts = 0
            while True:
                err = await (await self._produce(out))
                if err is None:
                    self.stats.produced += 1
                    break
                self.stats.produce_errors += 1
                attempts += 1
                permanent = err.code() in PERMANENT_PRODUCE_ERRORS
                dead_letter = self.config.dead_letter_topic
                if dead_letter is not None and out.topic != dead_letter and (
                        permanent or attempts >= self.config.produce_attempts):
                    # The output cannot be written: its dead letter (small: reason + truncated bytes) goes instead.
                    log.error("produce to %s failed (%s); dead-lettered", out.topic, err)
                    self.stats.dead_lettered += 1
                    rec = out.record
                    out = Produce(dead_letter, poison_record(rec.key, rec.value, rec.headers, self.config.stage,
                                                             f"cannot produce to {out.topic}: {err.str()}"))
                    attempts = 0
                    continue
                log.warning("produce to %s failed (%s); retrying", out.topic, err)
                await asyncio.sleep(_RETRY_HANDLER_S)

    async def _produce(self, out: Produce) -> asyncio.Future[KafkaError | None]:
        assert self._producer is not None
        return await self._producer.produce(out.topic, out.record)

    # offsets -----------------------------------------------------------------

    def _commit(self, sync: bool, only: list[TopicPartition] | None = None) -> None:
        if self._consumer is None:
            return
        wanted = {(tp.topic, tp.partition) for tp in only} if only is not None else None
        offsets = []
        for key, tracker in self._trackers.items():
            if wanted is not None and key not in wanted:
                continue
            pos = tracker.committable
            if pos is not None and pos > self.stats.committed.get(key, -1):
                offsets.append(TopicPartition(key[0], key[1], pos))
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not sync)
        except KafkaException as exc:
            self.stats.commit_errors += 1
            log.warning("commit failed for %s: %s", self.config.group, exc)
            return
        for tp in offsets:
            self.stats.committed[(tp.topic, tp.partition)] = tp.offset

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """A commit's result (served by consume()): on failure, forget the positions it would have set, so the
        next periodic commit, or the final synchronous one, sends them again."""
        failed = [tp for tp in partitions if err is not None or tp.error is not None]
        if not failed:
            return
        self.stats.commit_errors += 1
        log.warning("commit failed for %s: %s", self.config.group, err or failed[0].error)
        for tp in failed:
            key = (tp.topic, tp.partition)
            if self.stats.committed.get(key) == tp.offset:
                self.stats.committed.pop(key)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # librdkafka keeps a partition's pause across a lost session and the reassignment after it, while
        # this dispatcher forgot it with the partition: resume what is assigned, or it is never read again.
        try:
            consumer.resume(partitions)
        except KafkaException as exc:
            log.warning("resume on assignment failed for %s: %s", self.config.group, exc)
        for tp in partitions:
            self._trackers.pop((tp.topic, tp.partition), None)
            self.assignment.add((tp.topic, tp.partition))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self._crashed:
            self._commit(sync=True, only=partitions)
        paused = [tp for tp in partitions if (tp.topic, tp.partition) in self._paused]
        if paused:
            try:
                consumer.resume(paused)
            except KafkaException as exc:
                log.warning("resume on revocation failed for %s: %s", self.config.group, exc)
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self.assignment.discard(key)
            self._trackers.pop(key, None)
            self._queues.pop(key, None)
            self._paused.discard(key)
            self.stats.committed.pop(key, None)

    async def _drain(self) -> None:
        """Finish what is in flight (ordered queues included), within the drain timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.drain_timeout_s
        while (self._tasks or self._buffered()) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for task in list(self._tasks):
            task.cancel()
