"""``algotrade dev up``: infrastructure plus the seven services as supervised processes.

Every service runs as its own uvicorn process (``python -m <package> serve --migrate``) with its
log in ``.algotrade/logs/``. The supervisor waits for every ``/readyz``, prints a table, then
watches: a child that dies is reported with the tail of its log. SIGINT or SIGTERM stops the
services (SIGTERM, then SIGKILL after a grace period), then the infrastructure it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from algotrade.config import SERVICE_PORTS
from algotrade.dev.infra import (
    Provided,
    admin_connection,
    port_bindable,
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
# Processes without an HTTP port. One backtest worker: the mock broker cannot run a consumer
# group with more than one member (scale out on Apache Kafka instead).
WORKERS: dict[str, list[str]] = {"backtest-worker": ["backtesting_service", "worker"]}
DATABASE_NAME = "algotrade"
READY_MARK = "ALGOTRADE_READY"  # printed on its own line once every service is ready


@dataclass
class Child:
    name: str
    port: int | None  # None for a worker, which has no HTTP port
    proc: subprocess.Popen[bytes]
    log: Path
    ready: bool = False
    reported_dead: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" if self.port is not None else "(worker)"


@dataclass
class Stack:
    state_dir: Path
    base_port: int
    console: Console = field(default_factory=lambda: Console(width=110))
    infra: list[Provided] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def env(self) -> dict[str, str]:
        by_name = {p.name: p.url for p in self.infra}
        env = dict(os.environ)
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

    def start_infra(self) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        steps: list[Callable[[], Provided]] = [
            lambda: provide_postgres(
                self.state_dir, os.environ.get("DATABASE_URL"), allow_local=False
            ),
            lambda: provide_redis(self.state_dir, os.environ.get("REDIS_URL"), allow_local=False),
            lambda: provide_kafka(self.state_dir, os.environ.get("KAFKA_BOOTSTRAP")),
            lambda: provide_s3(self.state_dir, os.environ.get("S3_ENDPOINT")),
        ]
        for step in steps:
            provided = step()
            self.infra.append(provided)
            self.console.print(f"  [green]✓[/] {provided.name:<9} {provided.source}")
        postgres = self.infra[0]
        if not os.environ.get("DATABASE_URL"):
            postgres.url = asyncio.run(ensure_database(postgres.url, DATABASE_NAME))

    def busy_ports(self) -> list[str]:
        return [
            f"{name} :{self.service_port(name)}"
            for name in SERVICES
            if not port_bindable(self.service_port(name))
        ]

    def start_services(self) -> None:
        env = self.env()
        for name, package in SERVICES.items():
            port = self.service_port(name)
            log = self.state_dir / "logs" / f"{name}.log"
            log.unlink(missing_ok=True)
            child_env = {**env, "PORT": str(port)}
            proc = spawn([sys.executable, "-m", package, "serve", "--migrate"], log, env=child_env)
            self.children.append(Child(name, port, proc, log))
        for name, args in WORKERS.items():
            log = self.state_dir / "logs" / f"{name}.log"
            log.unlink(missing_ok=True)
            proc = spawn([sys.executable, "-m", *args], log, env=env)
            self.children.append(Child(name, None, proc, log))

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline and not self.stop_requested.is_set():
                for child in self.children:
                    if child.ready:
                        continue
                    if child.proc.poll() is not None:
                        self.report_death(child)
                        return False
                    if child.port is None:
                        child.ready = True  # alive is all a worker can show
                        continue
                    try:
                        child.ready = client.get(f"{child.url}/readyz").status_code == 200
                    except httpx.HTTPError:
                        child.ready = False
                if all(c.ready for c in self.children):
                    return True
                time.sleep(0.2)
        return False

    def table(self, elapsed: float) -> Table:
        table = Table(title=f"AlgoTrade Beta2 — embedded stack ({elapsed:.1f}s)")
        table.add_column("service")
        table.add_column("URL")
        table.add_column("state")
        table.add_column("pid", justify="right")
        for child in self.children:
            alive = child.proc.poll() is None
            ready_word = "running" if child.port is None else "ready"
            state = f"[green]{ready_word}[/]" if child.ready and alive else "[red]not ready[/]"
            if not alive:
                state = f"[red]exited {child.proc.returncode}[/]"
            table.add_row(child.name, child.url, state, str(child.proc.pid))
        for provided in self.infra:
            table.add_row(provided.name, _redact(provided.url), "[green]up[/]", provided.source)
        return table

    def report_death(self, child: Child) -> None:
        if child.reported_dead:
            return
        child.reported_dead = True
        self.console.print(
            f"[bold red]{child.name} exited with code {child.proc.returncode}[/]; "
            f"last lines of {child.log}:"
        )
        self.console.print(tail(child.log), markup=False, highlight=False)

    def watch(self) -> None:
        while not self.stop_requested.wait(0.5):
            for child in self.children:
                if child.proc.poll() is not None:
                    self.report_death(child)

    def stop(self) -> None:
        self.console.print("stopping services…")
        threads = [
            threading.Thread(target=terminate, args=(child.proc, 15.0)) for child in self.children
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for provided in reversed(self.infra):
            try:
                provided.stop()
            except Exception as exc:
                self.console.print(f"[yellow]stopping {provided.name}: {exc}[/]")
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
                "algotrade.cli",
                "dev",
                "up",
                "--state-dir",
                str(state_dir),
                "--base-port",
                str(base_port),
                "--timeout",
                str(ready_within),
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


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def up(state_dir: Path, base_port: int, timeout: float) -> int:
    """Run the stack until SIGINT/SIGTERM. Returns the process exit code."""
    stack = Stack(state_dir=state_dir, base_port=base_port)
    started = time.monotonic()

    def request_stop(signum: int, _frame: object) -> None:
        stack.stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if busy := stack.busy_ports():
        stack.console.print(
            f"[bold red]ports in use[/]: {', '.join(busy)}; choose another base port "
            "(--base-port or ALGOTRADE_BASE_PORT)"
        )
        return 2
    stack.console.print("[bold]AlgoTrade Beta2[/]: starting infrastructure")
    try:
        stack.start_infra()
        stack.console.print("starting services…")
        stack.start_services()
        ready = stack.wait_ready(timeout)
        stack.console.print(stack.table(time.monotonic() - started))
        if not ready:
            if not stack.stop_requested.is_set():
                stack.console.print(
                    f"[bold red]not every service was ready after {timeout:.0f}s[/]"
                )
                for child in stack.children:
                    if child.proc.poll() is not None:
                        stack.report_death(child)
                    elif not child.ready:
                        stack.console.print(f"{child.name} is not ready; log tail:")
                        stack.console.print(tail(child.log), markup=False, highlight=False)
            return 0 if stack.stop_requested.is_set() else 1
        stack.console.print(
            f"[bold green]ready[/] — gateway at http://127.0.0.1:{base_port} "
            f"(API docs at /docs); Ctrl-C stops everything"
        )
        stack.console.print(
            "try [bold]make demo[/] in another terminal: a new user backtests and sweeps an "
            "SMA-cross strategy on SPY through the gateway"
        )
        stack.console.print(READY_MARK, markup=False, highlight=False)
        stack.watch()
        return 0
    finally:
        stack.stop()
