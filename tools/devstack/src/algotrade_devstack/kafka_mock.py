"""Host librdkafka's mock cluster in its own process and print its bootstrap address.

``python -m algotrade_devstack.kafka_mock`` prints ``KAFKA_BOOTSTRAP=host:port`` on one line, then
serves until SIGTERM/SIGINT. The cluster speaks the real Kafka protocol, in memory; it
auto-creates topics (4 partitions) and lives exactly as long as this process.
"""

from __future__ import annotations

import logging
import queue
import re
import signal
import sys
import threading
import time

_BOOTSTRAP = re.compile(r"replaced with (\S+:\d+)")


def start_mock_cluster(timeout: float = 10.0) -> tuple[object, str]:
    """Start a mock cluster; returns the client that owns it (keep it alive) and its address."""
    import confluent_kafka

    lines: queue.Queue[str] = queue.Queue()

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.put(record.getMessage())

    log = logging.getLogger("algotrade_devstack.kafka_mock.librdkafka")
    log.propagate = False
    log.addHandler(Capture())
    log.setLevel(logging.DEBUG)
    owner = confluent_kafka.Producer({"test.mock.num.brokers": 1, "debug": "mock", "logger": log})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owner.poll(0.05)
        while not lines.empty():
            match = _BOOTSTRAP.search(lines.get())
            if match:
                return owner, match.group(1).rstrip(",")
    raise RuntimeError("mock cluster did not report its bootstrap address")


def main() -> None:
    owner, bootstrap = start_mock_cluster()
    print(f"KAFKA_BOOTSTRAP={bootstrap}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        owner.poll(0.5)  # type: ignore[attr-defined]
    sys.exit(0)


if __name__ == "__main__":
    main()
