"""The topic table: every Kafka topic the platform uses, with its partitions and retention.

One table, read by everything that creates topics: `ensure_topics` (the embedded stack and the
tests, through the admin API) and, checked by ``tests/test_deploy.py``, the compose
``kafka-topics-init`` job and the Kubernetes ``kafka-topics`` job. Partition counts bound how
many members of a consumer group can work at once: ``market.bars.v1`` and ``session.events.v1``
carry the live side (one partition per symbol:timeframe or session key hash), and
``backtest.jobs.v1`` is shared by the backtest workers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from algotrade.events import Topics

logger = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
_TOPIC_ALREADY_EXISTS = 36  # a concurrent creator won the race: fine


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its unprefixed name, partition count and retention."""

    name: str
    partitions: int
    retention_ms: int

    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms)}


# Base topics; each has a `.dlq` twin (see `topic_table`).
BASE_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("market.bars.v1", partitions=48, retention_ms=7 * DAY_MS),  # deploy/README: sizing
    TopicSpec("strategy.events.v1", partitions=3, retention_ms=30 * DAY_MS),
    TopicSpec("backtest.jobs.v1", partitions=6, retention_ms=7 * DAY_MS),
    TopicSpec("backtest.events.v1", partitions=6, retention_ms=30 * DAY_MS),
    TopicSpec("session.events.v1", partitions=12, retention_ms=30 * DAY_MS),
    TopicSpec("agent.events.v1", partitions=6, retention_ms=30 * DAY_MS),
)
DLQ_PARTITIONS = 3
DLQ_RETENTION_MS = 30 * DAY_MS


def topic_table() -> tuple[TopicSpec, ...]:
    """Every topic, base topics each followed by its DLQ twin."""
    out: list[TopicSpec] = []
    for spec in BASE_TOPICS:
        out.append(spec)
        out.append(TopicSpec(Topics.dlq(spec.name), DLQ_PARTITIONS, DLQ_RETENTION_MS))
    return tuple(out)


async def ensure_topics(
    bootstrap: str, prefix: str = "", *, replication_factor: int = 1, within: float = 30.0
) -> list[str]:
    """Create every topic of the table under ``prefix`` that does not exist yet.

    Idempotent; returns the names it created. Existing topics are left as they are (a
    partition count is never lowered, and raising one would move keys between partitions).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await asyncio.wait_for(admin.start(), within)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=prefix + spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs=spec.configs(),
            )
            for spec in topic_table()
            if prefix + spec.name not in existing
        ]
        if wanted:
            response = await asyncio.wait_for(admin.create_topics(wanted), within)
            failed = [
                f"{name}: error {code} {message or ''}".strip()
                for name, code, message, *_ in response.topic_errors
                if code not in (0, _TOPIC_ALREADY_EXISTS)
            ]
            if failed:
                raise RuntimeError(f"creating topics failed: {'; '.join(failed)}")
            logger.info("created topics %s", [t.name for t in wanted])
        return [t.name for t in wanted]
    finally:
        await admin.close()
