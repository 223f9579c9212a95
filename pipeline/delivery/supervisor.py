"""A dispatcher kept running as its Deployment would keep it: when it dies, a new one takes its place.

Knative's Trigger/KafkaSource dispatchers and OpenFaaS's connector are Deployments on a cluster; a
crashed pod is restarted and its group's uncommitted records are delivered again (at-least-once).
Both emulations supervise theirs with this one mechanism, so a dead dispatcher costs both alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from pipeline.delivery.dispatcher import KafkaDispatcher

log = logging.getLogger("lagduel.delivery")
RESTART_DELAY_S = 0.1  # a restarted container's start; kubelet's crash-loop backoff begins at 10 s only on repeats


class Worker(Protocol):
    dispatcher: KafkaDispatcher

    async def run(self) -> None: ...


W = TypeVar("W", bound=Worker)


class Supervised(Generic[W]):
    """Runs `make()`'s worker until `stop()`; a worker that ends otherwise (crash, error) is replaced."""

    def __init__(self, name: str, make: Callable[[], W]) -> None:
        self.name = name
        self._make = make
        self.current: W = make()
        self.retired: list[W] = []
        self.restarts = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def workers(self) -> list[W]:
        """Every worker this one has run, the live one last (their counts add up)."""
        return [*self.retired, self.current]

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"supervised-{self.name}")

    async def _loop(self) -> None:
        while True:
            try:
                await self.current.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s died (%s); restarting it", self.name, exc)
            if self._stopping:
                return
            await asyncio.sleep(RESTART_DELAY_S)
            self.restarts += 1
            self.retired.append(self.current)
            self.current = self._make()

    def crash(self) -> None:
        """Kill the live worker as a crashed pod dies (for failure tests)."""
        self.current.dispatcher.crash()

    def stop(self) -> None:
        self._stopping = True
        self.current.dispatcher.stop()

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()
