from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from pipeline.kafka import offsets
from pipeline.kafka.offsets import OffsetReader
from load.recovery import lag_metrics, RecoveryRules
from load.sampler import LagSampler, Sample
from pipeline.backends import LagSource
from pipeline.kafka import KafkaSettings, create_topics

pytestmark = pytest.mark.kafka


def _consume_all(consumer: Consumer, expected_total: int, deadline_s: float = 30.0) -> None:
    got, deadline = 0, time.monotonic() + deadline_s
    while got < expected_total:
        assert time.monotonic() < deadline, f"consumed {got} of {expected_total}"
        msgs = [m for m in consumer.consume(500, 0.5) if m.error() is None]
        if msgs:
            consumer.commit(offsets=[TopicPartition(m.topic(), m.partition(), m.offset() + 1) for m in msgs],
                            asynchronous=False)
            got += len(msgs)


def test_lag_rises_while_paused_and_recovers(kafka_settings: KafkaSettings, unique: Callable[[str], str]) -> None:
    topic, out, dlq, group, idle = unique("in"), unique("out"), unique("dlq"), unique("g"), unique("idle")
    create_topics(kafka_settings, [topic, out, dlq], 3)
    producer = Producer(kafka_settings.producer())

    def produce(n: int) -> None:
        for i in range(n):
            producer.produce(topic, b"x", str(i).encode())
        producer.flush(10)

    sampler = LagSampler(OffsetReader(kafka_settings), [LagSource("s", group, topic), LagSource("idle", idle, topic)],
                         topic, out, dlq, start=time.time())
    consumer = Consumer(kafka_settings.consumer(group))
    consumer.subscribe([topic])
    samples: list[Sample] = []
    try:
        produce(60)
        _consume_all(consumer, 60)
        samples.append(sampler.take())
        consumer.pause(consumer.assignment())
        for _ in range(3):
            produce(100)
            samples.append(sampler.take())
        consumer.resume(consumer.assignment())
        _consume_all(consumer, 300)
        samples.append(sampler.take())
        samples.append(sampler.take())
    finally:
        consumer.close()
    lags = [s.stages[0].lag for s in samples]
    assert lags == [0, 100, 200, 300, 0, 0]
    assert all(s.stages[0].uncommitted == 0 for s in samples)
    # A group that never committed is shown as uncommitted on every partition, not as zero lag.
    assert samples[-1].stages[1].uncommitted == 3 and samples[-1].stages[1].lag == 0
    assert samples[2].stages[0].consume_rate == 0 and samples[4].stages[0].consume_rate > 0
    ts = [s.t for s in samples]
    m = lag_metrics(ts, lags, [s.stages[0].time_lag_s for s in samples], [1] * len(ts), disturbance_end=ts[3],
                    rules=RecoveryRules(recovered_lag=0))
    assert m["peak_lag"] == 300 and m["time_to_peak_s"] == pytest.approx(ts[3] - ts[0])
    assert m["time_to_recover_s"] == pytest.approx(ts[4] - ts[3])
    assert m["peak_time_lag_s"] is not None and m["peak_time_lag_s"] > 0


def test_offsets_read_in_chunks_by_partition(kafka_settings: KafkaSettings, unique: Callable[[str], str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offsets, "CHUNK", 2)  # 5 partitions: three requests per topic and group
    topic, other, group = unique("chunked"), unique("other"), unique("g")
    create_topics(kafka_settings, [topic, other], 5)
    producer = Producer(kafka_settings.producer())
    for p in range(5):
        for _ in range(p * 3):
            producer.produce(topic, b"x", partition=p)
    producer.flush(10)
    committer = Consumer(kafka_settings.consumer(group))
    committer.commit(offsets=[TopicPartition(topic, 1, 2), TopicPartition(topic, 4, 12)], asynchronous=False)
    committer.close()
    reader = OffsetReader(kafka_settings)
    try:
        snap = reader.read([topic, other], [(group, topic)])
    finally:
        reader.close()
    assert snap.ends[topic].tolist() == [0, 3, 6, 9, 12] and snap.ends[other].tolist() == [0] * 5
    assert snap.commits[(group, topic)].tolist() == [offsets.NO_COMMIT, 2, offsets.NO_COMMIT, offsets.NO_COMMIT, 12]
    assert snap.log_ends[topic] == {0: 0, 1: 3, 2: 6, 3: 9, 4: 12}
    assert snap.committed[(group, topic)] == {0: None, 1: 2, 2: None, 3: None, 4: 12}
    sampler = LagSampler(reader, [LagSource("s", group, topic)], topic, other, other)
    stage = sampler.sample(time.time(), snap).stages[0]
    # Lag counts only committed partitions; the others are shown as uncommitted, per partition too.
    assert (stage.lag, stage.uncommitted, stage.committed_total) == (1, 3, 14)
    assert stage.partition_lag == (None, 1, None, None, 0)
    assert stage.partition_committed == (None, 2, None, None, 12)
    assert all(type(x) is int for x in stage.partition_lag if x is not None)



def test_reads_again_while_leadership_is_stale_for_the_request_or_a_partition() -> None:
    from types import SimpleNamespace

    from confluent_kafka import KafkaError, KafkaException

    ok = [SimpleNamespace(error=None, offset=7)]
    epoch = [SimpleNamespace(error=KafkaError(KafkaError.UNKNOWN_LEADER_EPOCH), offset=-1)]
    answers: list = [KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)), epoch, ok]

    def read() -> list:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    assert offsets.until_leaders_known(read, time.monotonic() + 5, pause_s=0) is ok and not answers
    # Past the deadline the stale answer is returned (the caller raises it); other errors are never retried.
    assert offsets.until_leaders_known(lambda: epoch, time.monotonic() - 1, pause_s=0) is epoch
    answers = [KafkaException(KafkaError(KafkaError._TIMED_OUT)), ok]
    with pytest.raises(KafkaException):
        offsets.until_leaders_known(read, time.monotonic() + 5, pause_s=0)
