"""Run `kafka.Kafka` as a child process: format KRaft storage, start, wait until it serves, stop.

Single node, combined broker+controller with a static voter (research/kafka-broker.md §1.5),
on 127.0.0.1 ports picked free at start.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.broker.errors import BrokerError, tail_of

_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.recovery.threads.per.data.dir=1
num.network.threads=3
num.io.threads=4
log.cleaner.dedupe.buffer.size=2097152
log.segment.bytes=67108864
log.retention.hours=24
"""
# Messages in a dead broker's log that name the cause plainly.
_CAUSES = (
    ("Address already in use", "port clash: {ports} already in use"),
    ("UnsupportedClassVersionError", "Java is too old: Kafka 4 needs Java 17 or newer"),
    ("OutOfMemoryError", "the broker's JVM ran out of memory"),
    ("No space left on device", "no space left on the device holding {data}"),
)


def new_cluster_id() -> str:
    """A KRaft cluster id: a UUID as 22 characters of URL-safe base64 (kafka-broker.md §1.4)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports: all are bound at once before any is released (one bind-and-close after another
    may be handed the same port twice, and a broker given it for both listeners refuses to start)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


@dataclass
class EmbeddedKafka:
    """One broker process. `start()` blocks until it serves; `stop()` ends it and its process group."""

    libs: Path
    workdir: Path
    java: str = "java"
    heap: str = "512m"
    start_timeout_s: float = 90.0
    port: int = 0
    controller_port: int = 0
    pid: int | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def start(self, attempts: int = 3) -> EmbeddedKafka:
        if shutil.which(self.java) is None and not Path(self.java).exists():
            raise BrokerError("Java is not installed: the embedded Kafka broker needs Java 17+ "
                              "(or give --bootstrap / LAGDUEL_BOOTSTRAP, or run a Docker engine)")
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
                return self
            except BrokerError as exc:
                # Ports are picked by bind-and-close, so another process may take one first: retry afresh.
                if not exc.cause.startswith("port clash") or attempt == attempts:
                    raise
        return self

    def _start_once(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.controller_port = free_ports(2)
        props = self.workdir / "server.properties"
        props.write_text(_SERVER_PROPERTIES.format(port=self.port, controller=self.controller_port, data=self.data_dir))
        log4j = self.workdir / "log4j2.properties"
        log4j.write_bytes(resources.files("pipeline.broker").joinpath("log4j2.properties").read_bytes())
        with self.log_path.open("wb") as log:
            # `--cluster-id=ID` in one word: a URL-safe base64 id may begin with "-" and read as an option.
            fmt = subprocess.run([*self._jvm(), "kafka.tools.StorageTool", "format", f"--cluster-id={new_cluster_id()}",
                                  "-c", str(props), "--ignore-formatted"], stdout=log, stderr=subprocess.STDOUT,
                                 timeout=120)
        if fmt.returncode != 0:
            raise self._failure("formatting the broker's storage failed")
        self._launch()

    def restart(self) -> EmbeddedKafka:
        """Stop the broker (SIGTERM: a clean shutdown) and start it again on the same ports and data directory,
        as a broker restart on a cluster does: topics, records and committed offsets survive."""
        if not self.port or not (self.workdir / "server.properties").exists():
            raise BrokerError("the broker was never started, so there is nothing to restart", self.log_path, "")
        self.stop()
        self._launch()
        return self

    def _jvm(self) -> list[str]:
        return [self.java, f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
                f"-Djava.io.tmpdir={self.workdir}", "-cp", f"{self.libs}/*"]

    def _launch(self) -> None:
        props = self.workdir / "server.properties"
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen([*self._jvm(), "kafka.Kafka", str(props)], stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self._proc.pid
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise self._failure(f"the broker exited during start (code {self._proc.returncode})")
            if admin is None and _accepts(self.port):
                admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
            if admin is not None:
                try:
                    if admin.list_topics(timeout=1).brokers:
                        return
                except KafkaException:
                    pass
            time.sleep(0.1)
        self.stop()
        raise self._failure(f"the broker did not serve within {self.start_timeout_s:.0f} s")

    def _failure(self, what: str) -> BrokerError:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for needle, cause in _CAUSES:
            if needle in text:
                what = cause.format(ports=f"{self.port}/{self.controller_port}", data=self.data_dir)
                break
        return BrokerError(what, self.log_path, tail_of(self.log_path))

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (the JVM's hook shuts down cleanly), then SIGKILL the whole process group."""
        if self.pid is None:
            return
        stop_process_group(self.pid, timeout_s, self._proc)
        self.pid, self._proc = None, None

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process_group(pid: int, timeout_s: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                break
        elif not _alive(pid):
            break
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        proc.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours is dead for our purposes
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
