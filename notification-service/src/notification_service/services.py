"""The notification service's domain objects, built once in the lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass

from notification_service.config import Settings
from notification_service.features import FeatureBoard
from notification_service.hub import Hub
from notification_service.parity import ParityChecker
from notification_service.sequencer import Sequencer
from notification_service.snapshots import ResourceReader
from notification_service.status import StatusBoard


@dataclass(frozen=True)
class Notifications:
    """What the socket handler and the routes use: the sockets and subscriptions (hub), the
    message numbers and resume buffer (sequencer), resource snapshots (reader), the families'
    modes (features), shadow parity and the status shared between instances."""

    settings: Settings
    hub: Hub
    sequencer: Sequencer
    reader: ResourceReader
    features: FeatureBoard
    parity: ParityChecker
    status: StatusBoard
