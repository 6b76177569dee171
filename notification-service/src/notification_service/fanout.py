"""Events in, numbered messages out: the instance's consumer of every event topic.

Each instance reads every event in a consumer group of its own (``notification.<instance>``),
so any instance can serve any client. For each stream an event goes to (`channels.routes`) it
asks the `Sequencer` for the message's number (the same on every instance), then hands the
message to its `Hub`. A group that is new starts at the topics' ends: a new instance does not
replay a month of history; a restarted one goes on from its committed offsets, numbering
what it missed (the numbers are shared, so nothing is numbered twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel

from algotrade.events import Envelope
from notification_service.channels import RESOURCE_KINDS, parse_channel, routes
from notification_service.families import Family, Mode
from notification_service.hub import Hub
from notification_service.parity import ParityChecker
from notification_service.sequencer import Sequencer


def event_json(envelope: Envelope) -> str:
    """What a client receives of an event (its envelope without the routing fields)."""
    return orjson.dumps(
        {
            "id": envelope.id,
            "type": envelope.type,
            "occurred_at": envelope.occurred_at,
            "payload": envelope.payload,
        }
    ).decode()


class Fanout:
    def __init__(
        self,
        sequencer: Sequencer,
        hub: Hub,
        parity: ParityChecker,
        mode_of: Callable[[Family], Mode],
    ) -> None:
        self._sequencer = sequencer
        self._hub = hub
        self._parity = parity
        self._mode_of = mode_of

    async def handle(self, envelope: Envelope, payload: BaseModel, record: Any) -> None:
        """`ConsumerRunner` handler: number the event in each of its streams, then deliver."""
        targets = routes(envelope)
        if not targets:
            return
        text = event_json(envelope)
        numbers = await asyncio.gather(
            *(
                self._sequencer.append(r.stream, envelope.id, r.family, text.encode())
                for r in targets
            )
        )
        for route, seq in zip(targets, numbers, strict=True):
            sent = self._hub.deliver(route, seq, text)
            kind = route.channel.partition(":")[0]
            if (
                sent
                and kind in RESOURCE_KINDS
                and envelope.user_id
                and self._mode_of(route.family) == "shadow"
            ):
                self._parity.observe(
                    envelope.user_id,
                    parse_channel(route.channel),
                    route.family,
                    envelope.type,
                    envelope.payload,
                )
