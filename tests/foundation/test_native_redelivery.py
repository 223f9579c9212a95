"""At-least-once in the native baseline: a worker killed mid-run loses nothing; its successor redelivers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest

from load.batch import produce_orders
from load.sink import SinkReader
from pipeline.backends import make_backend
from pipeline.kafka import KafkaSettings
from pipeline.native.backend import NativeBackend
from pipeline.orders import OrderFactory
from pipeline.topology import Topology

pytestmark = pytest.mark.kafka

ORDERS = 8000


async def _until(condition, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_run_loses_no_order(fresh_topology: Topology, kafka_settings: KafkaSettings) -> None:
    factory = OrderFactory(11, invalid_share=0.1)
    run_id = uuid.uuid4().hex[:12]
    with SinkReader(kafka_settings, fresh_topology.output.topic, fresh_topology.dead_letter_topic, run_id,
                    group=f"sink-{run_id}", start=time.time(), valid=factory.valid) as sink:
        first = make_backend("native", fresh_topology, kafka_settings, workers=1)
        assert isinstance(first, NativeBackend)
        async with first:
            await asyncio.to_thread(produce_orders, kafka_settings, fresh_topology, run_id, ORDERS, factory)
            # Mid-run: some orders through, most not; outputs in flight and inputs not yet committed.
            await _until(lambda: sink.received >= ORDERS // 10, 120)
            for proc in first._procs:
                os.kill(proc.pid, signal.SIGKILL)
            killed_at = sink.received
        assert killed_at < ORDERS, "the worker finished before it was killed: use more orders"
        async with make_backend("native", fresh_topology, kafka_settings, workers=1):
            await _until(lambda: sink.accounted >= ORDERS, 180)
            sink.close_drain_window()
            await asyncio.sleep(1.0)  # late duplicates are counted, not missed
        report = sink.report(ORDERS)
    assert report["accounted"] == ORDERS and report["lost"] == 0 and report["misrouted"] == 0, report
    # What the killed worker had sent but not committed came again: counted as duplicates, never hidden.
    assert report["delivered"] + report["dead_lettered"] == ORDERS + report["duplicated"]
