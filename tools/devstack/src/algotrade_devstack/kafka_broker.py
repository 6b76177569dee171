"""An embedded Apache Kafka broker (KRaft, combined broker and controller) as a JVM child.

The jars come from Maven Central through the pom beside this module (``kafka/pom.xml``, the one
place the version is pinned) and are cached under ``<cache>/kafka/<version>/libs``. A
`KafkaBroker` owns a data directory: `start` formats it on first use and launches the JVM;
`stop` shuts it down cleanly (SIGTERM) and `kill` does what a crash does (SIGKILL). Starting it
again reuses the same directory and ports, so committed offsets and topics survive, as on a
real cluster. That is what the fault tests need.

Settings are a single-node cluster's (replication factor 1) with small internal topics, a zero
initial rebalance delay and a low minimum session timeout, so that consumer groups form and
fail over in the time a test can afford.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from algotrade_devstack.infra import free_port, spawn, tail, tcp_reachable, terminate

KAFKA_DIR = Path(__file__).with_name("kafka")
POM = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
_STARTED = re.compile(r"Kafka Server started")


def kafka_version() -> str:
    """The pinned broker version, read from the pom."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if match is None:
        raise RuntimeError(f"{POM} pins no kafka.version")
    return match.group(1)


def java_and_maven() -> tuple[str, str] | None:
    """Paths of ``java`` and ``mvn`` when both are on ``PATH``; the embedded broker needs both."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    return (java, mvn) if java and mvn else None


def ensure_jars(cache_root: Path, *, timeout: float = 600.0) -> Path:
    """The broker's classpath directory, fetched with Maven once per version and machine.

    A file lock lets a test run and ``make run`` fetch at the same time without both writing;
    a ``.complete`` marker means a half-finished fetch is redone rather than trusted.
    """
    found = java_and_maven()
    if found is None:
        raise RuntimeError("java and mvn are needed to fetch Apache Kafka")
    _, mvn = found
    version = kafka_version()
    home = cache_root.resolve() / "kafka" / version
    libs, marker = home / "libs", home / ".complete"
    if marker.exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        shutil.rmtree(libs, ignore_errors=True)
        log = home / "maven.log"
        with log.open("wb") as sink:
            result = subprocess.run(  # noqa: S603 - our own command
                [
                    mvn,
                    "-B",
                    "-q",
                    "-f",
                    str(POM),
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={libs}",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"fetching Apache Kafka {version} failed:\n{tail(log)}")
        marker.write_text(version)
    return libs


@dataclass
class KafkaBroker:
    """One KRaft node on 127.0.0.1 whose data directory outlives its process."""

    data_dir: Path
    libs: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    partitions: int = 4
    # Off for the stack (topics come from the topic table, a typo fails loudly); the tests turn
    # it on so that each test's prefixed topics appear on first use.
    auto_create_topics: bool = False
    heap: str = "768m"
    proc: subprocess.Popen[bytes] | None = None
    # Where the launched process's lines start in its log (earlier runs' lines come before).
    _log_offset: int = field(default=0, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _config(self) -> Path:
        logs = self.data_dir / "log"
        values = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(logs),
            "num.partitions": str(self.partitions),
            "auto.create.topics.enable": str(self.auto_create_topics).lower(),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "2",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "500",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "168",
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
        return path

    def _java(self, main: str, *args: str) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:TieredStopAtLevel=1",  # C1 only: half the start-up time, plenty for tests
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _format(self, config: Path) -> None:
        if (self.data_dir / "log" / "meta.properties").exists():
            return
        result = subprocess.run(  # noqa: S603 - our own command
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--config",
                str(config),
                f"--cluster-id={_cluster_id()}",  # one argument: an id may start with "-"
                "--ignore-formatted",
            ),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                "formatting the Kafka data directory failed: "
                + result.stdout.decode(errors="replace")[-2000:]
                + result.stderr.decode(errors="replace")[-2000:]
            )

    def start(self, timeout: float = 90.0) -> None:
        """Launch the JVM and return once the broker serves requests on its port."""
        if self.running:
            return
        self.launch()
        self.wait_started(timeout)

    def launch(self) -> None:
        """Format the data directory on first use and start the JVM, without waiting for the
        broker to serve (`wait_started`)."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._config()
        self._format(config)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = spawn(self._java("kafka.Kafka", str(config)), self.log_path)

    def wait_started(self, timeout: float = 90.0) -> None:
        """Return once the launched broker serves requests on its port."""
        if self.proc is None:
            raise RuntimeError("the Kafka broker was not launched")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited with {self.proc.returncode} while starting:\n"
                    + tail(self.log_path, 40)
                )
            if tcp_reachable("127.0.0.1", self.port, 0.2) and self._logged_started(
                self._log_offset
            ):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Kafka was not up after {timeout:.0f}s:\n{tail(self.log_path, 40)}")

    def _logged_started(self, offset: int) -> bool:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return _STARTED.search(log.read().decode(errors="replace")) is not None

    def stop(self, timeout: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM): the broker flushes, hands off, then exits."""
        if self.proc is not None:
            terminate(self.proc, timeout)
            self.proc = None

    def kill(self) -> None:
        """What a crash looks like: SIGKILL, no flush, no goodbye to clients."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
