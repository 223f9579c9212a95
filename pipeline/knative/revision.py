"""Knative Serving, emulated for one Service: replica processes, queue-proxy breakers, the activator, the KPA.

Requests reach replicas over real HTTP. Each replica has a queue-proxy breaker: containerConcurrency
requests at once and a queue of 10 × CC, beyond which it answers 503 (knative.md §3.2). While the
activator is in the path (no ready pod, or negative excess burst capacity, §3.3) requests wait in the
activator's buffer (10000 deep) for a replica with a free slot; otherwise they go straight to a replica,
round-robin as kube-proxy would. The KPA observes the revision's concurrency every second and decides
every 2 s; new replicas pay the scheduling delay plus a real process start; scale-down drains gracefully.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from dataclasses import dataclass, field

import httpx

from pipeline.delivery.http1 import Http1Client
from pipeline.autoscale.kpa import KpaSettings, PodAutoscaler, ScaleDecision
from pipeline.replicas import ReplicaProcess
from pipeline.topology import Hops, KnativeEmulation, Stage

log = logging.getLogger("lagduel.knative.serving")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(eq=False)
class Pod:
    process: ReplicaProcess
    capacity: int
    in_flight: int = 0
    queue: deque[asyncio.Future[Pod]] = field(default_factory=deque)
    """Requests waiting in this pod's queue-proxy for a slot."""
    ready: bool = False
    draining: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def free(self) -> bool:
        return self.ready and not self.draining and self.in_flight < self.capacity


@dataclass
class RevisionStats:
    requests: int = 0
    overloaded: int = 0
    crashed: int = 0
    cold_starts: int = 0
    cold_start_s: list[float] = field(default_factory=list)
    hop_s: float = 0.0
    """Wall time of the real HTTP hops to the replicas beyond the stage's emulated latency, summed."""
    hops: int = 0
    last: ScaleDecision | None = None


class Revision:
    def __init__(self, stage: Stage, argv: Callable[[str], Sequence[str]], pod_start_delay_s: float,
                 kpa: KpaSettings | None = None, client: httpx.AsyncClient | None = None,
                 emulation: KnativeEmulation | None = None, hops: Hops | None = None) -> None:
        self.stage = stage
        self.emulation = emulation or KnativeEmulation()
        hops = hops or Hops()
        self._activator_s, self._queue_proxy_s = hops.activator_ms / 1000, hops.queue_proxy_ms / 1000
        self.kpa_settings = kpa or KpaSettings.for_stage(stage)
        self._argv = argv
        self._delay = pod_start_delay_s
        self._client = client or httpx.AsyncClient(timeout=5)  # readiness probes
        self._http1 = Http1Client()  # the one real hop: dispatcher → replica
        self.pods: list[Pod] = []
        self.stats = RevisionStats()
        self._buffer: deque[asyncio.Future[Pod]] = deque()  # the activator's buffer
        self._rr = itertools.count()
        self._names = itertools.count()
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # replica boots and retirements
        self._t0 = time.monotonic()
        self.kpa = PodAutoscaler(self.kpa_settings, now=0.0)
        # Time-weighted concurrency of the current second (what queue-proxy and the activator report).
        self._area, self._mark, self._since = 0.0, 0.0, 0.0
        self.next_tick = self.emulation.tick_s
        """When the KPA decides next, on the revision's clock (`_autoscale`)."""

    # counts ------------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self._t0

    @property
    def ready(self) -> int:
        return sum(1 for p in self.pods if p.ready and not p.draining)

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self.pods)

    @property
    def queued(self) -> int:
        """Requests held in the activator's buffer."""
        return len(self._buffer)

    @property
    def concurrency(self) -> int:
        return self.in_flight + self.queued + sum(len(p.queue) for p in self.pods)

    def _account(self) -> None:
        now = self._now()
        self._area += self.concurrency * (now - self._mark)
        self._mark = now

    @property
    def starting_replicas(self) -> int:
        """Replicas the revision starts with: initial-scale, at least min-scale (knative.md §3.1)."""
        return max(self.kpa_settings.initial_scale, self.kpa_settings.min_scale)

    @property
    def activator_in_path(self) -> bool:
        last = self.stats.last
        return self.ready == 0 or last is None or last.activator_in_path

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._scale(self.kpa.tick(0.0, 0).replicas)
        self._loop_task = asyncio.create_task(self._autoscale())

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
        for fut in (*self._buffer, *(f for p in self.pods for f in p.queue)):
            fut.cancel()
        pods, self.pods = self.pods, []
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(p.process.stop(grace_s=5) for p in pods), return_exceptions=True)
        await self._client.aclose()
        await self._http1.close()

    async def _autoscale(self) -> None:
        """Observe every second, decide every 2 s (a request arriving at scale 0 pokes at once: `_poke`)."""
        tick = self.emulation.tick_s
        self.next_tick = tick
        while True:
            await asyncio.sleep(1.0)
            self.reap()
            self._account()
            now = self._now()
            self.kpa.observe(now, self._area / max(now - self._since, 1e-3))
            self._area, self._since = 0.0, now
            if now >= self.next_tick:
                self._decide(now)
                self.next_tick = now + tick

    def control_clock(self, at: float) -> dict[str, float]:
        """Where the KPA's clock stands at monotonic time `at` (a load's start): seconds since the revision was
        created, since its last 1 s observation, and until its next decision tick (the simulator starts its KPA
        there, `lagduel simulate --like`)."""
        now = at - self._t0
        return {"created_s": round(now, 3), "last_observe_s": round(self._since - now, 3),
                "next_tick_s": round(self.next_tick - now, 3)}

    def _poke(self) -> None:
        """knative.md §3.3 MultiScaler.Poke: at scale 0, a request's stat triggers a decision at once."""
        self._account()
        now = self._now()
        self.kpa.observe(now, max(self.concurrency, 1))
        self._decide(now)

    def _decide(self, now: float) -> None:
        decision = self.kpa.tick(now, self.ready)
        self.stats.last = decision
        self._scale(decision.replicas)

    def _scale(self, want: int) -> None:
        live = [p for p in self.pods if not p.draining]
        for _ in range(want - len(live)):
            self._add_pod()
        surplus = len(live) - want
        if surplus > 0:
            # Starting pods go first, then the least busy ready ones.
            for p in sorted(live, key=lambda p: (p.ready, p.in_flight))[:surplus]:
                p.draining = True
                self._spawn(self._retire(p))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _add_pod(self) -> None:
        name = f"{self.stage.name}-{next(self._names)}"
        pod = Pod(ReplicaProcess(name, self._argv(name), ready_path="/readyz"), self.stage.concurrency)
        self.pods.append(pod)
        pod.task = asyncio.create_task(self._boot(pod))
        self._tasks.add(pod.task)
        pod.task.add_done_callback(self._tasks.discard)

    async def _boot(self, pod: Pod) -> None:
        started = time.monotonic()
        await asyncio.sleep(self._delay)  # scheduling + container start on a cluster
        pod.process.spawn()
        try:
            await pod.process.wait_ready(self._client, timeout_s=60)
        except (RuntimeError, TimeoutError) as exc:
            log.warning("replica %s failed to start: %s", pod.process.name, exc)
            pod.draining = True
            await pod.process.stop()
            if pod in self.pods:
                self.pods.remove(pod)
            return
        pod.ready = True
        self.stats.cold_starts += 1
        self.stats.cold_start_s.append(time.monotonic() - started)
        self._hand_out()

    def reap(self) -> int:
        """Pods whose process died (a crashed container) leave the routing at once and are replaced, as the
        kubelet restarts a failed container and the endpoints drop it; returns how many died."""
        dead = [p for p in self.pods if p.ready and not p.draining and not p.process.alive()]
        for pod in dead:
            pod.ready = False
            self.pods.remove(pod)
            self._account()
            self._buffer.extendleft(reversed(pod.queue))  # its queue-proxy died with it: back to the activator
            pod.queue.clear()
            self.stats.crashed += 1
            log.warning("replica %s died; replacing it", pod.process.name)
        if dead:
            self._scale(self.kpa.replicas if self.stats.last is None else self.stats.last.replicas)
            self._hand_out()
        return len(dead)

    def kill_one(self) -> ReplicaProcess | None:
        """SIGKILL one ready replica (a crashed pod), for failure tests."""
        for pod in self.pods:
            if pod.ready and not pod.draining:
                pod.process.kill()
                return pod.process
        return None

    async def _retire(self, pod: Pod) -> None:
        """Graceful scale-down: out of routing first, its waiters back to the activator, drain, then SIGTERM."""
        if pod.task and not pod.task.done():
            pod.task.cancel()
        self._hand_out()
        while pod.in_flight:
            await asyncio.sleep(0.05)
        await pod.process.stop(grace_s=10)
        if pod in self.pods:
            self.pods.remove(pod)

    # requests ----------------------------------------------------------------------------------

    async def handle(self, headers: dict[str, str], body: bytes) -> Reply:
        self.stats.requests += 1
        admitted = self._admit()
        if admitted is None:
            self.stats.overloaded += 1
            return Reply(503, {"content-type": "text/plain"}, b"overloaded: request queue full")
        through_activator = not isinstance(admitted, Pod) or self.activator_in_path
        pod = admitted if isinstance(admitted, Pod) else await self._wait(admitted)
        # Modeled hop costs (pipeline.yaml emulation.hops): the activator when in the path, the queue-proxy always.
        hop_s = self._queue_proxy_s + (self._activator_s if through_activator else 0.0)
        try:
            if hop_s > 0:
                await asyncio.sleep(hop_s)
            began = time.monotonic()
            status, reply_headers, content = await self._http1.post("127.0.0.1", pod.process.port, "/", headers, body)
            self.stats.hop_s += max(time.monotonic() - began - self.stage.latency_s, 0.0)
            self.stats.hops += 1
            return Reply(status, reply_headers, content)
        except OSError as exc:
            if not pod.process.alive():
                self.reap()
            return Reply(502, {"content-type": "text/plain"},
                         f"replica {pod.process.name}: {type(exc).__name__}: {exc}".encode())
        finally:
            self._release(pod)

    def _admit(self) -> Pod | asyncio.Future[Pod] | None:
        """A pod with a reserved slot, a place in a queue, or None when the queue is full."""
        ready = [p for p in self.pods if p.ready and not p.draining]
        if self.activator_in_path or not ready:
            free = [p for p in ready if p.free]
            if free and not self._buffer:
                return self._reserve(min(free, key=lambda p: p.in_flight))
            if len(self._buffer) >= self.emulation.activator_queue_depth:
                return None
            fut = self._enqueue(self._buffer)
            if self.kpa.replicas == 0:
                self._poke()
            return fut
        pod = ready[next(self._rr) % len(ready)]  # kube-proxy spreads over the ready pods
        if pod.free and not pod.queue:
            return self._reserve(pod)
        if len(pod.queue) >= self.emulation.queue_depth_per_slot * pod.capacity:  # knative.md §3.2: 10 × CC
            return None
        return self._enqueue(pod.queue)

    def _enqueue(self, queue: deque[asyncio.Future[Pod]]) -> asyncio.Future[Pod]:
        self._account()
        fut: asyncio.Future[Pod] = asyncio.get_running_loop().create_future()
        queue.append(fut)
        return fut

    async def _wait(self, fut: asyncio.Future[Pod]) -> Pod:
        try:
            return await fut
        except asyncio.CancelledError:  # the caller timed out while queued
            if fut.done() and not fut.cancelled():
                self._release(fut.result())
            else:
                self._account()
                for queue in (self._buffer, *(p.queue for p in self.pods)):
                    if fut in queue:
                        queue.remove(fut)
            raise

    def _reserve(self, pod: Pod) -> Pod:
        self._account()
        pod.in_flight += 1
        return pod

    def _release(self, pod: Pod) -> None:
        self._account()
        pod.in_flight -= 1
        self._hand_out()

    def _hand_out(self) -> None:
        """Give free slots to waiters, FIFO: a pod's own queue first, then the activator's buffer."""
        for pod in self.pods:
            while pod.queue and pod.free:
                self._grant(pod.queue.popleft(), pod)
            if pod.queue and (pod.draining or not pod.ready):
                self._account()
                self._buffer.extendleft(reversed(pod.queue))  # its queue-proxy is going: back to the activator
                pod.queue.clear()
        while self._buffer:
            free = [p for p in self.pods if p.free]
            if not free:
                break
            self._grant(self._buffer.popleft(), min(free, key=lambda p: p.in_flight))

    def _grant(self, fut: asyncio.Future[Pod], pod: Pod) -> None:
        if not fut.done():
            fut.set_result(self._reserve(pod))
