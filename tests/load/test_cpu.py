from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from load.cpu import GROUPS, CpuMonitor, CpuSample, process_group

PY = "/venv/bin/python"
SPAWN = "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)"


@pytest.mark.parametrize(("cmdline", "group"), [
    (["/usr/lib/jvm/bin/java", "-Xmx1g", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "server.properties"], "broker"),
    (["java", "-cp", "/libs/*", "kafka.tools.StorageTool", "format", "-c", "server.properties"], None),
    ([PY, "-m", "kafka.Kafka"], None),  # not a JVM
    ([PY, "-m", "pipeline.knative.service", "--stage", "score", "--port", "8080"], "replicas"),
    ([PY, "-m", "pipeline.openfaas.watchdog", "--stage", "score"], "replicas"),
    ([PY, "-m", "lagduel", "connector", "--stage", "score", "--topology", "t.yaml"], "connectors"),
    ([PY, "/venv/bin/lagduel", "connector", "--stage", "score"], "connectors"),
    (["/venv/bin/lagduel", "connector", "--stage", "score"], "connectors"),
    ([PY, "/venv/bin/lagduel", "duel", "--profile", "burst"], None),
    ([PY, "-m", "pipeline.native.worker", "/tmp/spec.json", "127.0.0.1:9092", "/tmp/ready"], "native"),
    ([PY, "-c", SPAWN, "--multiprocessing-fork"], "generator"),
    ([PY, "-c", "from multiprocessing.resource_tracker import main;main(4)"], None),
    ([PY, "-m", "pytest", "tests/knative/test_service.py"], None),
    ([], None),
])
def test_process_group(cmdline: list[str], group: str | None) -> None:
    assert process_group(cmdline) == group


@pytest.fixture
def start() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def go(*argv: str) -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE))
        return started[-1]

    yield go
    for p in started:
        p.kill()
        p.wait()


def await_sample(monitor: CpuMonitor, done: Callable[[CpuSample], bool], busy: bool = False,
                 tries: int = 8) -> CpuSample:
    """Samples about every 0.5 s (spinning in this process when `busy`) until `done` or `tries` run out."""
    for _ in range(tries):
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            if not busy:
                time.sleep(0.05)
        s = monitor.sample()
        if done(s):
            break
    return s


def test_own_busy_loop_counts_as_lagduel() -> None:
    monitor = CpuMonitor()
    assert monitor.cores == psutil.cpu_count()
    s = await_sample(monitor, lambda s: s.groups["lagduel"] >= 0.7, busy=True)
    assert set(s.groups) == set(GROUPS)
    assert 0.7 <= s.groups["lagduel"] <= 1.3  # one spinning thread: about one core
    assert s.busy_share >= 0.7 / monitor.cores - 0.05  # the machine saw it too
    assert s.groups["other"] >= 0.0
    assert abs(time.time() - s.t) < 1.0


def test_busy_descendant_counts_in_its_group(start: Callable[..., subprocess.Popen[bytes]]) -> None:
    monitor = CpuMonitor()
    child = start("-c", "while True: pass", "pipeline.native.worker")
    s = await_sample(monitor, lambda s: s.groups["native"] >= 0.6)
    assert child.pid in monitor.members()["native"]
    assert 0.6 <= s.groups["native"] <= 1.3
    assert s.groups["lagduel"] < 0.5


def test_spawned_load_worker_counts_as_generator() -> None:
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    worker = ctx.Process(target=stop.wait, args=(30,), name="lagduel-load-0", daemon=True)
    worker.start()
    try:
        monitor = CpuMonitor()
        assert worker.pid in monitor.members()["generator"]
    finally:
        stop.set()
        worker.join(5)


def test_a_stranger_with_our_command_line_is_other(start: Callable[..., subprocess.Popen[bytes]]) -> None:
    # The intermediate process exits at once, so the sleeper is orphaned: not our descendant.
    orphan_pid = int(subprocess.run(
        [sys.executable, "-c", "import subprocess, sys; print(subprocess.Popen([sys.executable, '-c', "
         "'import time; time.sleep(30)', 'pipeline.native.worker'], "
         "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"],
        capture_output=True, text=True, check=True).stdout)
    try:
        own = start("-c", "import time; time.sleep(30)", "pipeline.native.worker")
        monitor = CpuMonitor()
        assert monitor.members()["native"] == [own.pid]
    finally:
        psutil.Process(orphan_pid).kill()


def test_exited_processes_leave_their_group(start: Callable[..., subprocess.Popen[bytes]]) -> None:
    child = start("-c", "import time; time.sleep(30)", "pipeline.knative.service")
    monitor = CpuMonitor()
    assert monitor.members()["replicas"] == [child.pid]
    child.kill()
    child.wait()
    monitor.sample()
    assert monitor.members()["replicas"] == []


def test_many_replicas_are_each_grouped_once(start: Callable[..., subprocess.Popen[bytes]]) -> None:
    """30 replica processes: every one found and grouped, none twice (the cost per sample is a benchmark
    figure, in load/cpu.py's docstring, not a test)."""
    children = [start("-c", "import sys, time; print(flush=True); time.sleep(60)", "pipeline.openfaas.watchdog")
                for _ in range(30)]
    for c in children:
        assert c.stdout is not None and c.stdout.readline() == b"\n"
    monitor = CpuMonitor()
    members = monitor.members()
    assert sorted(members["replicas"]) == sorted(c.pid for c in children)
    sample = monitor.sample()
    assert sample.groups["replicas"] >= 0.0 and set(sample.groups) == set(GROUPS)
