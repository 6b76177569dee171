"""The embedded stack as `make run` starts it, for tests that drive whole processes (the
end-to-end and chaos suites): free ports, the launch, its status and what it leaves behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from algotrade.config import SERVICE_PORTS
from algotrade_devstack.infra import port_bindable
from algotrade_devstack.stack import INFRA_ENV_NAMES, StackStatus, launch, read_status

READY_WITHIN = 90.0


def free_base_port() -> int:
    """Seven consecutive bindable ports below Linux's ephemeral range (32768-60999), where
    outgoing connections could take one between this check and the services' bind."""
    for _ in range(50):
        base = random.randrange(20_000, 32_000, 10)  # noqa: S311 - a port, not a secret
        if all(port_bindable(base + i) for i in range(7)):
            return base
    raise RuntimeError("no free port range")


@dataclass
class RunningStack:
    proc: subprocess.Popen[bytes]
    base_port: int
    state_dir: Path
    output: Path
    ready_after: float

    def url(self, service: str = "api-gateway") -> str:
        offset = SERVICE_PORTS[service] - SERVICE_PORTS["api-gateway"]
        return f"http://127.0.0.1:{self.base_port + offset}"

    def status(self) -> StackStatus:
        status = read_status(self.state_dir)
        if status is None:
            raise RuntimeError(f"the stack in {self.state_dir} wrote no status")
        return status

    def children(self) -> set[int]:
        return {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the supervisor's exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def leftovers(self, pids: set[int], within: float = 10.0) -> list[str]:
        """Processes of this stack still alive ``within`` seconds after it stopped."""
        deadline = time.monotonic() + within
        while True:
            left = []
            for proc in psutil.process_iter(["pid", "cmdline", "status"]):
                try:
                    if proc.info["status"] == psutil.STATUS_ZOMBIE:
                        continue
                    cmdline = " ".join(proc.info["cmdline"] or [])
                    if proc.info["pid"] in pids or str(self.state_dir) in cmdline:
                        left.append(cmdline)
                except psutil.Error:
                    continue
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)


def start_stack(
    tmp_path: Path, *, cwd: Path, env: dict[str, str] | None = None, workers: int = 1
) -> RunningStack:
    """The stack as `make run` starts it, on embedded infrastructure and free ports, run from
    ``cwd`` (the repository); ``env`` adds to the test run's environment."""
    state_dir = tmp_path / "state"
    base = free_base_port()
    # The stack provides these itself; a value in the test run's environment would replace them.
    child_env = {k: v for k, v in os.environ.items() if k not in INFRA_ENV_NAMES} | (env or {})
    output = tmp_path / "stack.out"
    started = time.monotonic()
    proc = launch(
        state_dir,
        base,
        output,
        ready_within=READY_WITHIN,
        workers=workers,
        env=child_env,
        cwd=cwd,
    )
    return RunningStack(proc, base, state_dir, output, time.monotonic() - started)
