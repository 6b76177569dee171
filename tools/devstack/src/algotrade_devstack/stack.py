"""``algotrade dev up``: infrastructure, the seven services, the backtest workers and the
forward-test workers as supervised processes.

Every service runs as its own uvicorn process (``python -m <package> serve --migrate``), every
backtest worker as ``python -m backtesting_service worker`` and every forward-test worker as
``python -m forward_test_service worker``, each with its log in
``<state>/logs/``. The supervisor creates the topic table on Kafka, waits for every ``/readyz``,
prints a table, then watches: a child that dies is reported with the tail of its log and
restarted after an exponential backoff (0.5 s doubling to 30 s, reset once a child stayed up for
a minute). Infrastructure it started itself heals the same way: a dead Redis, PostgreSQL, Kafka
broker or S3 emulator is started again on the same port and data directory, so every child's
URLs stay valid. Every second it writes ``<state>/status.json``, which ``algotrade dev status``
shows. SIGINT or SIGTERM stops the children (SIGTERM, then SIGKILL after a grace period), then
the infrastructure it started; nothing is restarted while stopping.

Keys are this installation's own, generated on first start into ``<state>/keys.json`` (mode
0600) and reused (`algotrade.keys`): the gateway gets the access-token secret and its signing
key, the backtesting and forward-test services and their workers their narrowed signing keys,
every other service the public keys alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypedDict, cast

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from algotrade.config import SERVICE_PORTS
from algotrade.keys import ENV_NAMES as KEY_ENV_NAMES
from algotrade.keys import SignerRole, load_or_create_installation_keys
from algotrade.topics import BASE_TOPICS, ensure_topics, topic_table
from algotrade_devstack.infra import (
    Provided,
    admin_connection,
    provide_kafka,
    provide_postgres,
    provide_redis,
    provide_s3,
    spawn,
    tail,
    terminate,
)

SERVICES: dict[str, str] = {
    "api-gateway": "api_gateway",
    "strategy-service": "strategy_service",
    "market-data-service": "market_data_service",
    "backtesting-service": "backtesting_service",
    "forward-test-service": "forward_test_service",
    "notification-service": "notification_service",
    "analytics-service": "analytics_service",
}
# Which children sign internal tokens, with which installation key (`algotrade.keys`); the
# others verify with public keys only.
SIGNERS: dict[str, SignerRole] = {
    "api-gateway": "gateway",
    "backtesting-service": "backtesting",
    "forward-test-service": "forward-test",
    "notification-service": "notification",
    "analytics-service": "analytics",
}
WORKER_NAME = "backtest-worker"  # workers are named backtest-worker-1..N
WORKER_COMMAND = ["backtesting_service", "worker"]
JOBS_TOPIC = "backtest.jobs.v1"  # the topic the workers share as one consumer group
FORWARD_WORKER_NAME = "forward-test-worker"  # forward-test-worker-1..N
FORWARD_WORKER_COMMAND = ["forward_test_service", "worker"]
DATABASE_NAME = "algotrade"
READY_MARK = "ALGOTRADE_READY"  # printed on its own line once every service is ready
STATUS_FILE = "status.json"
INFRA_ENV_FILE = "infra.env"
INFRA_ENV_NAMES = frozenset({"DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP", "S3_ENDPOINT"})
"""The running stack's infrastructure and service URLs (mode 0600), for operator commands such
as ``algotrade migrate beta1`` that connect to the databases directly."""

FIRST_BACKOFF = 0.5  # seconds before the first restart of a child that died
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a child that stayed up this long starts again from FIRST_BACKOFF
# Deaths before a child was ever ready that make start-up give up: a service that cannot start
# (a bad setting, a failing migration) should fail `make run` fast, not loop for its timeout.
START_CRASH_LIMIT = 3
STATUS_EVERY = 1.0

ChildState = Literal["starting", "ready", "running", "restarting", "exited"]
InfraState = Literal["running", "restarting"]
Phase = Literal["starting", "ready", "failed", "stopping", "stopped"]


class ChildStatus(TypedDict):
    name: str
    url: str
    pid: int | None
    state: ChildState
    restarts: int
    last_exit_code: int | None
    uptime: float | None  # seconds the current process has been up; None when not running


class InfraStatus(TypedDict):
    name: str
    url: str  # password redacted
    source: str
    kind: Literal["real", "stand-in"]
    pid: int | None
    # None: not the stack's to restart (from the environment, or the stand-in broker)
    state: InfraState | None
    restarts: int


class StackStatus(TypedDict):
    supervisor_pid: int
    supervisor_started: float  # the process's create time, so a reused pid is not mistaken
    phase: Phase
    state_dir: str
    gateway: str
    updated_at: str
    ready_after: float | None
    children: list[ChildStatus]
    infrastructure: list[InfraStatus]


@dataclass
class Child:
    """One supervised process: its command, and what happened to it so far."""

    name: str
    port: int | None  # None for a worker, which has no HTTP port
    command: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    state: ChildState = "starting"
    restarts: int = 0
    last_exit_code: int | None = None
    started_at: float = 0.0  # monotonic start of the current process
    restart_at: float = 0.0  # monotonic time of the next start, while restarting
    backoff: float = FIRST_BACKOFF
    start_crashes: int = 0  # deaths while the stack was starting

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" if self.port is not None else "(worker)"

    @property
    def ready_state(self) -> ChildState:
        return "running" if self.port is None else "ready"

    def start(self) -> None:
        self.proc = spawn(self.command, self.log, env=self.env)
        self.started_at = time.monotonic()
        # Alive is all a worker can show; a service is ready when its /readyz says so.
        self.state = "running" if self.port is None else "starting"

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def status(self, now: float) -> ChildStatus:
        up = self.state in ("starting", "ready", "running")
        return {
            "name": self.name,
            "url": self.url,
            "pid": self.proc.pid if self.proc is not None else None,
            "state": self.state,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "uptime": round(now - self.started_at, 1) if up else None,
        }


@dataclass
class Healing:
    """Restart bookkeeping of one infrastructure server the stack started (`Provided.server`)."""

    state: InfraState = "running"
    restarts: int = 0
    up_since: float = field(default_factory=time.monotonic)
    restart_at: float = 0.0  # monotonic time of the next start, while restarting
    backoff: float = FIRST_BACKOFF


@dataclass
class Stack:
    state_dir: Path
    base_port: int
    workers: int = 1
    forward_workers: int = 1
    cache_dir: Path | None = None  # where the Kafka jars are kept; default: state_dir
    console: Console = field(default_factory=lambda: Console(width=110))
    infra: list[Provided] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    healing: dict[str, Healing] = field(default_factory=dict)  # by infrastructure name
    stop_requested: threading.Event = field(default_factory=threading.Event)
    phase: Phase = "starting"
    ready_after: float | None = None
    _status_written: float = 0.0

    @property
    def status_path(self) -> Path:
        return self.state_dir / STATUS_FILE

    def env(self) -> dict[str, str]:
        """What every child shares. Keys are not in it: each child gets only its own
        (`start_services`), whatever the shell that ran ``make run`` exported."""
        by_name = {p.name: p.url for p in self.infra}
        env = {k: v for k, v in os.environ.items() if k not in KEY_ENV_NAMES}
        env.update(
            {
                "ENVIRONMENT": env.get("ENVIRONMENT", "local"),
                "DATABASE_URL": by_name["postgres"],
                "REDIS_URL": by_name["redis"],
                "KAFKA_BOOTSTRAP": by_name["kafka"],
                "S3_ENDPOINT": by_name["s3"],
            }
        )
        for name in SERVICES:
            env[service_url_env(name)] = f"http://127.0.0.1:{self.service_port(name)}"
        demo_data = Path.cwd() / "data"
        if "IMPORT_DIR" not in env and demo_data.is_dir():
            env["IMPORT_DIR"] = str(demo_data)  # server-side imports of the shipped demo data
        return env

    def service_port(self, name: str) -> int:
        return self.base_port + SERVICE_PORTS[name] - SERVICE_PORTS["api-gateway"]

    def kafka(self) -> Provided:
        return next(p for p in self.infra if p.name == "kafka")

    def start_infra(self) -> None:
        """PostgreSQL, Redis, Kafka and S3. The S3 emulator and the Kafka broker take seconds to
        boot (moto's imports; a JVM, after formatting its data directory): they are launched
        first and waited for last, so that they boot while the others start. Each line says
        when its piece was up, in seconds since the start of this step."""
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        env = os.environ.get
        pending: dict[str, Provided] = {}
        try:
            pending["s3"] = provide_s3(self.state_dir, env("S3_ENDPOINT"), wait=False)
            pending["kafka"] = provide_kafka(
                self.state_dir, env("KAFKA_BOOTSTRAP"), cache_root=self.cache_dir, wait=False
            )
            pending["postgres"] = provide_postgres(
                self.state_dir, env("DATABASE_URL"), allow_local=False
            )
            pending["redis"] = provide_redis(self.state_dir, env("REDIS_URL"), allow_local=False)
            for name in ("postgres", "redis", "kafka", "s3"):
                provided = pending.pop(name)
                self.infra.append(provided)  # from here on, `stop` stops it
                provided.wait()
                mark = "[bold red]![/]" if provided.stand_in else "[green]✓[/]"
                took = time.monotonic() - began
                self.console.print(f"  {mark} {provided.name:<9} {provided.source} ({took:.1f}s)")
                self.write_status()
        finally:
            for provided in pending.values():  # launched, but a later start failed
                with contextlib.suppress(Exception):
                    provided.stop()
        postgres = self.infra[0]
        if not env("DATABASE_URL"):
            postgres.url = asyncio.run(ensure_database(postgres.url, DATABASE_NAME))

    def create_topics(self) -> None:
        """Create the topic table on Kafka (the embedded broker auto-creates nothing)."""
        kafka = self.kafka()
        if kafka.stand_in:
            # The mock cluster cannot create topics through the admin API; it makes them
            # (4 partitions) on first use instead.
            self.console.print("  [yellow]![/] topics    created on first use by the stand-in")
            return
        prefix = os.environ.get("KAFKA_TOPIC_PREFIX", "")
        created = asyncio.run(ensure_topics(kafka.url, prefix))
        total = len(topic_table())
        self.console.print(
            f"  [green]✓[/] topics    {total} in the topic table, {len(created)} created now"
        )

    def worker_count(self) -> int:
        """The number of workers to start, capped where Kafka cannot serve them all."""
        if self.workers > 1 and self.kafka().stand_in:
            self.console.print(
                f"[yellow]starting 1 backtest worker, not {self.workers}[/]: the stand-in mock "
                "cluster cannot run a consumer group of more than one member (install java and "
                "mvn for the real broker, or set KAFKA_BOOTSTRAP)"
            )
            return 1
        partitions = next(s.partitions for s in BASE_TOPICS if s.name == JOBS_TOPIC)
        if self.workers > partitions:
            self.console.print(
                f"[yellow]{JOBS_TOPIC} has {partitions} partitions[/]: "
                f"{self.workers - partitions} of the {self.workers} workers will stay idle"
            )
        return self.workers

    def busy_ports(self) -> list[str]:
        return [
            f"{name} :{self.service_port(name)}"
            for name in SERVICES
            if not _port_free(self.service_port(name))
        ]

    def start_services(self) -> None:
        env = self.env()
        keys = load_or_create_installation_keys(self.state_dir)
        logs = self.state_dir / "logs"
        for name, package in SERVICES.items():
            port = self.service_port(name)
            command = [sys.executable, "-m", package, "serve", "--migrate"]
            child_env = {**env, **keys.env(SIGNERS.get(name)), "PORT": str(port)}
            self.children.append(Child(name, port, command, child_env, logs / f"{name}.log"))
        for number in range(1, self.worker_count() + 1):
            name = f"{WORKER_NAME}-{number}"
            command = [sys.executable, "-m", *WORKER_COMMAND]
            child_env = {**env, **keys.env("backtesting")}
            self.children.append(Child(name, None, command, child_env, logs / f"{name}.log"))
        forward = 1 if self.kafka().stand_in else self.forward_workers
        for number in range(1, forward + 1):
            name = f"{FORWARD_WORKER_NAME}-{number}"
            command = [sys.executable, "-m", *FORWARD_WORKER_COMMAND]
            child_env = {**env, **keys.env("forward-test")}
            self.children.append(Child(name, None, command, child_env, logs / f"{name}.log"))
        for child in self.children:
            _keep_previous(child.log)
            child.start()
        self.write_status()

    def supervise(self, client: httpx.Client) -> None:
        """One round: reap the dead, restart those whose backoff ran out, probe the starting."""
        self.supervise_infra()
        now = time.monotonic()
        for child in self.children:
            if child.state == "restarting":
                if now >= child.restart_at and not self.stop_requested.is_set():
                    self.restart(child)
            elif child.proc is not None and child.proc.poll() is not None:
                self.child_died(child, child.proc, now)
            elif child.state == "starting" and child.port is not None:
                try:
                    ready = client.get(f"{child.url}/readyz").status_code == 200
                except httpx.HTTPError:
                    ready = False
                if ready:
                    child.state = "ready"
                    if child.restarts:
                        self.console.print(
                            f"[green]{child.name} is ready again[/] "
                            f"(pid {_pid(child)}, restart {child.restarts})"
                        )
        if now - self._status_written >= STATUS_EVERY:
            self.write_status()

    def supervise_infra(self) -> None:
        """Start again, on the same port and data, the infrastructure servers that died.

        A start blocks the round (a Kafka broker takes seconds): it must run on this thread,
        because a child asks to die with the thread that started it (`infra.spawn`).
        """
        for piece in self.infra:
            if piece.server is None or self.stop_requested.is_set():
                continue
            heal = self.healing.setdefault(piece.name, Healing())
            now = time.monotonic()
            if heal.state == "running" and not piece.server.running:
                uptime = now - heal.up_since
                if uptime >= STABLE_AFTER:
                    heal.backoff = FIRST_BACKOFF
                heal.state, heal.restart_at = "restarting", now + heal.backoff
                self.console.print(
                    f"[bold red]{piece.name} (pid {piece.server.pid}) died after {uptime:.1f}s[/]; "
                    f"starting it again on the same port and data in {heal.backoff:.1f}s"
                )
                heal.backoff = min(heal.backoff * 2, MAX_BACKOFF)
                self.write_status()
            elif heal.state == "restarting" and now >= heal.restart_at:
                self.restart_infra(piece, heal)

    def restart_infra(self, piece: Provided, heal: Healing) -> None:
        assert piece.server is not None
        try:
            piece.server.start()
        except Exception as exc:  # whatever kept it from starting, the next try may not meet
            heal.restart_at = time.monotonic() + heal.backoff
            self.console.print(
                f"[bold red]{piece.name} did not start again[/] ({type(exc).__name__}: "
                f"{str(exc)[-500:]}); next try in {heal.backoff:.1f}s"
            )
            heal.backoff = min(heal.backoff * 2, MAX_BACKOFF)
            return
        heal.state, heal.up_since = "running", time.monotonic()
        heal.restarts += 1
        self.console.print(
            f"[green]{piece.name} is up again[/] (pid {piece.server.pid}, restart {heal.restarts})"
        )
        self.write_status()

    def infra_status(self, piece: Provided) -> InfraStatus:
        heal = self.healing.get(piece.name) if piece.server is not None else None
        return {
            "name": piece.name,
            "url": _redact(piece.url),
            "source": piece.source,
            "kind": "stand-in" if piece.stand_in else "real",
            "pid": piece.server.pid if piece.server is not None else None,
            "state": None if piece.server is None else heal.state if heal else "running",
            "restarts": heal.restarts if heal else 0,
        }

    def child_died(self, child: Child, proc: subprocess.Popen[bytes], now: float) -> None:
        code = proc.returncode
        # What the child left behind in its process group (a worker's process pool) would
        # hold its port or its partitions against the next start.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        uptime = now - child.started_at
        if uptime >= STABLE_AFTER:
            child.backoff = FIRST_BACKOFF
        delay = child.backoff
        child.backoff = min(child.backoff * 2, MAX_BACKOFF)
        child.last_exit_code = code
        if self.phase == "starting":
            child.start_crashes += 1
        child.state, child.restart_at = "restarting", now + delay
        self.console.print(
            f"[bold red]{child.name} (pid {proc.pid}) {_describe_exit(code)} after "
            f"{uptime:.1f}s[/]; restarting in {delay:.1f}s; last lines of {child.log}:"
        )
        self.console.print(tail(child.log), markup=False, highlight=False)
        self.write_status()

    def restart(self, child: Child) -> None:
        child.restarts += 1
        _log_restart(child)
        child.start()
        self.console.print(
            f"[yellow]restarted {child.name}[/] (pid {_pid(child)}, restart {child.restarts})"
        )
        self.write_status()

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline and not self.stop_requested.is_set():
                self.supervise(client)
                if looping := [c for c in self.children if c.start_crashes >= START_CRASH_LIMIT]:
                    names = ", ".join(c.name for c in looping)
                    self.console.print(
                        f"[bold red]{names} died {START_CRASH_LIMIT} times before being ready[/]"
                    )
                    return False
                if all(c.state == c.ready_state for c in self.children):
                    return True
                time.sleep(0.2)
        return False

    def watch(self) -> None:
        with httpx.Client(timeout=1.0) as client:
            while not self.stop_requested.wait(0.25):
                self.supervise(client)

    def status(self) -> StackStatus:
        now = time.monotonic()
        return {
            "supervisor_pid": os.getpid(),
            "supervisor_started": psutil.Process().create_time(),
            "phase": self.phase,
            "state_dir": str(self.state_dir),
            "gateway": f"http://127.0.0.1:{self.base_port}",
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "ready_after": self.ready_after,
            "children": [child.status(now) for child in self.children],
            "infrastructure": [self.infra_status(p) for p in self.infra],
        }

    def write_infra_env(self) -> None:
        """``infra.env``: the infrastructure URLs every service gets, readable only by the
        user who started the stack (a database URL may carry a password)."""
        env = self.env()
        names = sorted(INFRA_ENV_NAMES) + [service_url_env(name) for name in SERVICES]
        lines = [f"{name}={env[name]}\n" for name in names]
        partial = self.state_dir / (INFRA_ENV_FILE + ".tmp")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.writelines(lines)
        partial.replace(self.state_dir / INFRA_ENV_FILE)

    def write_status(self) -> None:
        """Replace the status file atomically: a reader sees the old or the new, never half."""
        self._status_written = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        partial = self.status_path.with_name(STATUS_FILE + ".tmp")
        partial.write_text(json.dumps(self.status(), indent=2))
        partial.replace(self.status_path)

    def stop(self) -> None:
        self.phase = "stopping"
        self.write_status()
        self.console.print("stopping services…")
        running = [c.proc for c in self.children if c.proc is not None]
        threads = [threading.Thread(target=terminate, args=(proc, 15.0)) for proc in running]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for child in self.children:
            if child.state != "restarting":
                child.last_exit_code = child.exit_code()
            child.state = "exited"
        for provided in reversed(self.infra):
            try:
                provided.stop()
            except Exception as exc:
                self.console.print(f"[yellow]stopping {provided.name}: {exc}[/]")
        self.phase = "stopped"
        self.write_status()
        self.console.print("[green]all stopped[/]")


def service_url_env(name: str) -> str:
    """``strategy-service`` -> ``STRATEGY_SERVICE_URL`` (the gateway's routing settings)."""
    return name.upper().replace("-", "_") + "_URL"


async def ensure_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server if missing; return its URL."""
    from sqlalchemy.engine import make_url

    conn = await admin_connection(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def launch(
    state_dir: Path,
    base_port: int,
    output: Path,
    *,
    ready_within: float = 90.0,
    workers: int = 1,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``algotrade dev up`` as a child and return once every service is ready.

    For callers that need a whole stack (``algotrade demo``, the end-to-end tests). Raises
    `RuntimeError` with the stack's output if it stops or is not ready in time.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own command
            [
                sys.executable,
                "-m",
                "algotrade_devstack.cli",
                "dev",
                "up",
                "--state-dir",
                str(state_dir),
                "--base-port",
                str(base_port),
                "--timeout",
                str(ready_within),
                "--workers",
                str(workers),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    deadline = time.monotonic() + ready_within + 30
    while READY_MARK not in output.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                terminate(proc)
            raise RuntimeError(f"the stack did not become ready:\n{tail(output, 60)}")
        time.sleep(0.25)
    return proc


def read_infra_env(state_dir: Path) -> dict[str, str]:
    """The infrastructure URLs of the stack that last ran from ``state_dir`` ({} if none)."""
    try:
        text = (state_dir / INFRA_ENV_FILE).read_text()
    except FileNotFoundError:
        return {}
    known = INFRA_ENV_NAMES | {service_url_env(name) for name in SERVICES}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {name: value for name, value in pairs if name in known}


def read_status(state_dir: Path) -> StackStatus | None:
    """The status a stack last wrote in ``state_dir``, or None when there is none."""
    try:
        return cast(StackStatus, json.loads((state_dir / STATUS_FILE).read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def supervisor_alive(status: StackStatus) -> bool:
    """Whether the process that wrote ``status`` still runs (and is not a reuse of its pid)."""
    try:
        started: float = psutil.Process(status["supervisor_pid"]).create_time()
    except psutil.Error:
        return False
    return abs(started - status["supervisor_started"]) < 1.0


def status_tables(status: StackStatus, title: str) -> tuple[Table, Table]:
    """The children and the infrastructure of a stack, as the ready banner and
    ``algotrade dev status`` show them."""
    children = Table(title=title)
    for column in ("name", "URL", "state", "pid", "restarts", "last exit", "uptime"):
        right = column in ("pid", "restarts", "last exit", "uptime")
        children.add_column(column, justify="right" if right else "left", no_wrap=True)
    colours = {"ready": "green", "running": "green", "starting": "yellow"}
    for child in status["children"]:
        code = child["last_exit_code"]
        children.add_row(
            child["name"],
            child["url"],
            f"[{colours.get(child['state'], 'red')}]{child['state']}[/]",
            str(child["pid"] or "—"),
            str(child["restarts"]),
            "—" if code is None else str(code),
            _duration(child["uptime"]),
        )
    infra = Table(title="infrastructure")
    infra.add_column("piece", no_wrap=True)
    infra.add_column("URL", overflow="fold")
    infra.add_column("kind", no_wrap=True)
    infra.add_column("pid", justify="right", no_wrap=True)
    infra.add_column("restarts", justify="right", no_wrap=True)
    infra.add_column("source")
    for piece in status["infrastructure"]:
        kind = "[bold red]STAND-IN[/]" if piece["kind"] == "stand-in" else "[green]real[/]"
        # .get: a status file written before the stack restarted its infrastructure has none
        pid, state = piece.get("pid"), piece.get("state")
        shown_pid = "—" if pid is None else f"[red]{pid}[/]" if state == "restarting" else str(pid)
        restarts = str(piece.get("restarts", 0)) if state is not None else "—"
        infra.add_row(piece["name"], piece["url"], kind, shown_pid, restarts, piece["source"])
    return children, infra


def show_status(state_dir: Path, console: Console | None = None) -> int:
    """``algotrade dev status``: print the running stack's tables; 1 when none runs."""
    # As wide as the stack's own console when not printing to a terminal (a pipe, a test).
    console = console or Console(width=None if sys.stdout.isatty() else 110)
    status = read_status(state_dir)
    if status is None:
        console.print(
            f"[bold red]no stack is running[/]: {state_dir / STATUS_FILE} does not exist "
            "(start one with make run)"
        )
        return 1
    if not supervisor_alive(status) or status["phase"] == "stopped":
        console.print(
            f"[bold red]no stack is running[/]: its supervisor (pid {status['supervisor_pid']}) "
            f"is gone; last status written at {status['updated_at']}"
        )
        return 1
    ready = status["ready_after"]
    title = f"AlgoTrade Beta2 — {status['phase']}" + (
        f" (ready in {ready:.1f}s)" if ready is not None else ""
    )
    for table in status_tables(status, title):
        console.print(table)
    console.print(
        f"supervisor pid {status['supervisor_pid']}, gateway {status['gateway']}, "
        f"status written {status['updated_at']}"
    )
    return 0


def _port_free(port: int) -> bool:
    """Whether a service could listen on ``port``. Binds as uvicorn does (SO_REUSEADDR), so
    the TIME_WAIT connections a stack that just stopped leaves behind do not count as busy."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _keep_previous(log: Path) -> None:
    """Keep the previous run's log as ``<name>.log.1``; this run starts a fresh one."""
    if log.exists():
        log.replace(log.with_name(log.name + ".1"))


def _log_restart(child: Child) -> None:
    """A line in the child's own log (JSON, like the rest) between the death and the restart."""
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "WARNING",
        "service": child.name,
        "logger": __name__,
        "message": f"restart {child.restarts} after exit code {child.last_exit_code}",
    }
    with child.log.open("a") as log:
        log.write(json.dumps(line) + "\n")


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _pid(child: Child) -> int | None:
    return child.proc.pid if child.proc is not None else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def up(
    state_dir: Path,
    base_port: int,
    timeout: float,
    *,
    workers: int = 1,
    forward_workers: int = 1,
    cache_dir: Path | None = None,
) -> int:
    """Run the stack until SIGINT/SIGTERM. Returns the process exit code."""
    stack = Stack(
        state_dir=state_dir,
        base_port=base_port,
        workers=workers,
        forward_workers=forward_workers,
        cache_dir=cache_dir,
    )
    started = time.monotonic()

    def request_stop(signum: int, _frame: object) -> None:
        stack.stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    previous = read_status(state_dir)
    if previous is not None and previous["phase"] != "stopped" and supervisor_alive(previous):
        stack.console.print(
            f"[bold red]a stack already runs from {state_dir}[/] (supervisor pid "
            f"{previous['supervisor_pid']}); stop it first or choose another --state-dir"
        )
        return 2
    if busy := stack.busy_ports():
        stack.console.print(
            f"[bold red]ports in use[/]: {', '.join(busy)}; choose another base port "
            "(--base-port or ALGOTRADE_BASE_PORT)"
        )
        return 2
    stack.console.print("[bold]AlgoTrade Beta2[/]: starting infrastructure")
    try:
        stack.write_status()
        stack.start_infra()
        stack.write_infra_env()
        if stack.stop_requested.is_set():
            return 0
        stack.create_topics()
        stack.console.print("starting services…")
        stack.start_services()
        ready = stack.wait_ready(timeout)
        elapsed = time.monotonic() - started
        if ready:
            stack.phase, stack.ready_after = "ready", round(elapsed, 1)
        else:
            stack.phase = "failed"
        stack.write_status()
        title = f"AlgoTrade Beta2 — embedded stack ({elapsed:.1f}s)"
        for table in status_tables(stack.status(), title):
            stack.console.print(table)
        if not ready:
            if not stack.stop_requested.is_set():
                stack.console.print(
                    f"[bold red]not every service was ready after {elapsed:.0f}s[/]"
                )
                for child in stack.children:
                    if child.state == "starting":
                        stack.console.print(f"{child.name} is not ready; log tail:")
                        stack.console.print(tail(child.log), markup=False, highlight=False)
            return 0 if stack.stop_requested.is_set() else 1
        stack.console.print(
            f"[bold green]ready in {elapsed:.1f}s[/] — gateway at http://127.0.0.1:{base_port} "
            f"(API docs at /docs); Ctrl-C stops everything"
        )
        stack.console.print(
            "try [bold]make demo[/] in another terminal: a new user backtests and sweeps an "
            "SMA-cross strategy on SPY through the gateway; [bold]algotrade dev status[/] "
            "shows the processes"
        )
        stack.console.print(READY_MARK, markup=False, highlight=False)
        stack.watch()
        return 0
    finally:
        stack.stop()
