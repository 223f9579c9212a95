"""Serving emulation with real replica processes: queue-proxy breaker, activator buffer, scale from zero."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pipeline import events
from pipeline.autoscale.kpa import KpaSettings
from pipeline.knative.revision import Revision
from pipeline.replicas import python_module
from pipeline.topology import load_topology

from tests.foundation.test_functions import GOOD


def revision(**knative: float) -> Revision:
    stage = load_topology().with_stage_overrides(concurrency=1, latency_ms=300, knative=knative).stage("validate")

    def argv(_name: str) -> list[str]:
        return python_module("pipeline.knative.service", "--stage", "validate", "--host", "127.0.0.1",
                             "--log-level", "warning")

    return Revision(stage, argv, pod_start_delay_s=0.0, kpa=KpaSettings.for_stage(stage))


async def until(cond: Callable[[], bool], timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.02)


def order() -> tuple[dict[str, str], bytes]:
    return events.to_http(events.new_event("dev.lagduel.order.placed", "/t", GOOD))


async def test_queue_proxy_admits_cc_queues_ten_times_cc_and_refuses_the_rest() -> None:
    rev = revision(target_burst_capacity=0)  # activator out of the path once a pod is ready
    await rev.start()
    try:
        await until(lambda: rev.ready == 1 and not rev.activator_in_path)
        replies = await asyncio.gather(*(rev.handle(*order()) for _ in range(13)))
        statuses = sorted(r.status for r in replies)
        # CC 1: one in flight + 10 queued are served; the other two get 503 from the full queue.
        assert statuses == [200] * 11 + [503] * 2
        assert b"queue full" in next(r.body for r in replies if r.status == 503)
    finally:
        await rev.stop()


async def test_activator_buffers_at_zero_and_a_request_pokes_a_cold_start() -> None:
    rev = revision(initial_scale=0)
    await rev.start()
    try:
        assert rev.kpa.replicas == 0 and rev.pods == []
        reply = asyncio.create_task(rev.handle(*order()))
        await until(lambda: rev.queued == 1)  # held by the activator while the replica starts
        assert rev.kpa.replicas == 2  # poked at once, not at the next 2 s tick: ceil(1 / (CC 1 × 0.7)) = 2
        assert (await reply).status == 200
        assert rev.stats.cold_starts >= 1 and rev.stats.cold_start_s[0] > 0
        pods = list(rev.pods)
    finally:
        await rev.stop()
    assert pods and all(not p.process.alive() for p in pods)  # stop() ends every replica process
