"""Read a Kafka topic from the beginning in a test, by manual partition assignment.

No consumer group: a test only wants to see everything that was published to a topic it owns,
and joining a group would add a rebalance to every read.
"""

from __future__ import annotations

import asyncio
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from algotrade.events import Envelope, default_registry

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


async def read_records(
    bootstrap: str, topic: str, *, expect: int, within: float = 15.0, settle_ms: int = 0
) -> list[Record]:
    """Every record of ``topic`` from the start, once at least ``expect`` have arrived.

    ``settle_ms`` then waits that long for more, so a caller asserting on the count also sees
    records published beyond ``expect``. Raises `AssertionError` naming the counts when the
    topic or the records do not appear ``within`` seconds.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        partitions = None
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                if loop.time() > deadline:
                    raise AssertionError(f"topic {topic} did not appear within {within}s")
                await asyncio.sleep(0.1)
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Record] = []
        while len(records) < expect:
            if loop.time() > deadline:
                raise AssertionError(
                    f"{len(records)} of {expect} records arrived on {topic} within {within}s"
                )
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        if settle_ms:
            for batch in (await consumer.getmany(timeout_ms=settle_ms)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, *, within: float = 30.0) -> list[Record]:
    """Every record of ``topic`` published before the call: up to the end offsets it finds.

    For a caller that polls until what it expects is there and then names what is missing,
    rather than waiting for a count.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in partitions]
        if not assigned:
            return []
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[Record] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if loop.time() > deadline:
                raise AssertionError(f"{topic} not read to its end within {within}s")
            for batch in (await consumer.getmany(*assigned, timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def read_events(
    bootstrap: str, topic: str, *, expect: int, within: float = 15.0, settle_ms: int = 0
) -> list[tuple[bytes | None, Envelope, BaseModel]]:
    """`read_records`, each decoded with the default registry as ``(key, envelope, payload)``."""
    out: list[tuple[bytes | None, Envelope, BaseModel]] = []
    for record in await read_records(
        bootstrap, topic, expect=expect, within=within, settle_ms=settle_ms
    ):
        envelope, payload = default_registry.decode(record.value)
        out.append((record.key, envelope, payload))
    return out


async def group_state(bootstrap: str, group_id: str) -> tuple[str, int]:
    """A consumer group's state (``Stable``, ``PreparingRebalance``...) and member count."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group_id])
        # DescribeGroups v0+: (error_code, group_id, state, protocol_type, protocol, members, ...)
        group = response.groups[0]
        return str(group[2]), len(group[5])
    finally:
        await admin.close()


async def wait_group(bootstrap: str, group_id: str, *, members: int, within: float = 60.0) -> None:
    """Wait until ``group_id`` is ``Stable`` with exactly ``members`` members."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seen: tuple[str, int] = ("", 0)
    while loop.time() < deadline:
        try:
            seen = await group_state(bootstrap, group_id)
        except KafkaError:  # no coordinator yet: the group's first member is still joining
            seen = ("no coordinator", 0)
        if seen == ("Stable", members):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"group {group_id} is {seen}, not Stable with {members} members")
