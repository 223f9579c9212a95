"""Which Kafka to use, in order: an explicit bootstrap, the broker `lagduel kafka up` left running,
an installed distribution (KAFKA_HOME), jars resolved from Maven Central, a Docker container.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.broker.errors import BrokerError
from pipeline.broker.maven import resolve_jars
from pipeline.broker.process import EmbeddedKafka, _alive, stop_process_group
from pipeline.settings import Environment


@dataclass
class Kafka:
    """A Kafka to talk to; `close()` stops it when lagduel started it for this command only."""

    bootstrap: str
    origin: str
    version: str | None = None
    log_path: Path | None = None
    _close: Callable[[], None] | None = None
    restart: Callable[[], object] | None = None
    """Stop and start the broker on the same port and data (None: not a broker lagduel runs)."""

    def close(self) -> None:
        if self._close:
            self._close()
            self._close = None

    def __enter__(self) -> Kafka:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class BackgroundBroker:
    """What `lagduel kafka up` records so that later commands find the broker it left running."""

    pid: int
    bootstrap: str
    version: str
    log: str
    workdir: str
    libs: str = ""
    port: int = 0
    controller_port: int = 0

    @staticmethod
    def state_file(env: Environment) -> Path:
        return env.cache_dir / "broker" / "state.json"

    @classmethod
    def read(cls, env: Environment) -> BackgroundBroker | None:
        try:
            state = cls(**json.loads(cls.state_file(env).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return state if _alive(state.pid) else None

    def write(self, env: Environment) -> None:
        path = self.state_file(env)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    def stop(self, env: Environment) -> None:
        stop_process_group(self.pid)
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.state_file(env).unlink(missing_ok=True)

    def restart(self, env: Environment) -> BackgroundBroker:
        """The same broker stopped and started again: same port, same data (a broker restart in a run)."""
        if not self.libs or not self.port:
            raise BrokerError("this background broker predates restarts: `lagduel kafka down`, then `up` again")
        broker = EmbeddedKafka(Path(self.libs), Path(self.workdir), java=env.java, port=self.port,
                               controller_port=self.controller_port, pid=self.pid).restart()
        assert broker.pid is not None
        state = BackgroundBroker(broker.pid, self.bootstrap, self.version, self.log, self.workdir, self.libs,
                                 self.port, self.controller_port)
        state.write(env)
        return state


def start_embedded(env: Environment, workdir: Path) -> EmbeddedKafka:
    """Start a broker process from KAFKA_HOME, else from Maven-resolved jars."""
    if env.kafka_home:
        libs = env.kafka_home / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"KAFKA_HOME={env.kafka_home} holds no libs/kafka_2.13-*.jar: not a Kafka distribution")
    else:
        libs = resolve_jars(env.cache_dir, env.kafka_version)
    return EmbeddedKafka(libs, workdir, java=env.java).start()


def version_of(libs: Path) -> str | None:
    jar = next(iter(sorted(libs.glob("*kafka_2.13-*.jar"))), None)
    return jar.name.rsplit("kafka_2.13-", 1)[1].removesuffix(".jar") if jar else None


def open_kafka(env: Environment, bootstrap: str | None = None) -> Kafka:
    """A Kafka for one command; the caller closes it (which stops a broker started just for it)."""
    explicit = bootstrap or env.bootstrap
    if explicit:
        return Kafka(explicit, "given bootstrap")
    background = BackgroundBroker.read(env)
    if background:
        current = [background]

        def restart_background() -> None:  # each restart leaves a new pid behind: the next one stops that
            current[0] = current[0].restart(env)

        return Kafka(background.bootstrap, "lagduel kafka up", background.version, Path(background.log),
                     restart=restart_background)
    errors: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="lagduel-kafka-"))
    try:
        broker = start_embedded(env, workdir)
        return Kafka(broker.bootstrap, "embedded", version_of(broker.libs), broker.log_path,
                     lambda: (broker.stop(), shutil.rmtree(workdir, ignore_errors=True)),
                     restart=broker.restart)
    except BrokerError as exc:
        if "Java is not installed" not in exc.cause and "Maven (mvn) is not installed" not in exc.cause:
            raise
        errors.append(exc.cause)
    container = _docker_kafka(env)
    if container:
        return container
    raise BrokerError(
        "no Kafka available. Options: give --bootstrap HOST:PORT or LAGDUEL_BOOTSTRAP; set KAFKA_HOME to a Kafka "
        "4.x distribution; install Java 17+ and Maven so lagduel resolves the broker from Maven Central; or run a "
        f"Docker engine. ({'; '.join(errors)})"
    )


def _docker_kafka(env: Environment) -> Kafka | None:
    """Kafka in a container, where a Docker engine answers (research/kafka-broker.md §3)."""
    try:
        import docker  # type: ignore[import-untyped]
        from testcontainers.core.container import DockerContainer

        docker.from_env().ping()
    except Exception:  # no SDK, no socket, no engine: this option is simply not there
        return None
    from pipeline.broker.process import free_ports

    port, controller = free_ports(2)
    container = (
        DockerContainer(f"apache/kafka:{env.kafka_version}")
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", f"PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:{controller}")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", f"1@localhost:{controller}")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    container.start()
    from pipeline.kafka import KafkaSettings, wait_for_broker

    wait_for_broker(KafkaSettings(f"127.0.0.1:{port}"), timeout_s=90)
    return Kafka(f"127.0.0.1:{port}", "docker", env.kafka_version, None, container.stop)


def run_background(env: Environment) -> BackgroundBroker:
    """Start a broker that outlives this process (for `lagduel kafka up`)."""
    existing = BackgroundBroker.read(env)
    if existing:
        return existing
    workdir = env.cache_dir / "broker" / "run"
    shutil.rmtree(workdir, ignore_errors=True)
    broker = start_embedded(env, workdir)
    assert broker.pid is not None
    state = BackgroundBroker(broker.pid, broker.bootstrap, version_of(broker.libs) or "?", str(broker.log_path),
                             str(workdir), str(broker.libs), broker.port, broker.controller_port)
    state.write(env)
    return state
