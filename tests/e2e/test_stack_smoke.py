"""`make run`'s stack: every service ready, then Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from algotrade.config import SERVICE_PORTS
from algotrade.dev.infra import port_bindable

READY_WITHIN = 90.0


def free_base_port() -> int:
    """Seven consecutive bindable ports below Linux's ephemeral range (32768-60999), where
    outgoing connections could take one between this check and the services' bind."""
    for _ in range(50):
        base = random.randrange(20_000, 32_000, 10)
        if all(port_bindable(base + i) for i in range(7)):
            return base
    raise RuntimeError("no free port range")


def stack_processes(state_dir: Path, pids: set[int]) -> list[psutil.Process]:
    """Live processes that belong to this stack: its children or anything using its state dir."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["pid"] in pids or str(state_dir) in cmdline:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(180)
def test_embedded_stack_starts_all_seven_services_and_stops_cleanly(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    base = free_base_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP", "S3_ENDPOINT"}
    }
    out = tmp_path / "stack.out"
    started = time.monotonic()
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "algotrade.cli",
                "dev",
                "up",
                "--state-dir",
                str(state_dir),
                "--base-port",
                str(base),
                "--timeout",
                str(READY_WITHIN),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + READY_WITHIN + 30
        while "ALGOTRADE_READY" not in out.read_text(errors="replace"):
            assert proc.poll() is None, f"stack exited early:\n{out.read_text()}"
            assert time.monotonic() < deadline, f"stack not ready:\n{out.read_text()}"
            time.sleep(0.25)
        ready_after = time.monotonic() - started
        print(f"embedded stack ready after {ready_after:.1f}s")

        children = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        assert len(children) >= 7 + 3  # seven services, redis, kafka mock, moto
        for name, port in SERVICE_PORTS.items():
            url = f"http://127.0.0.1:{base + port - SERVICE_PORTS['api-gateway']}/readyz"
            response = httpx.get(url, timeout=5)
            assert response.status_code == 200, f"{name}: {response.text}"
            assert response.json()["service"] == name

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.read_text()
    assert "all stopped" in text
    deadline = time.monotonic() + 10
    while (left := stack_processes(state_dir, children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left running: {[p.info['cmdline'] for p in left]}"
