"""The families' modes, changed at run time: persisted, audited, effective without a restart.

The settings (``WS_FEATURE_<FAMILY>``) give each family's starting mode; an admin's change is a
row in ``notify.feature_modes`` and an entry in ``notify.feature_changes`` (who, when, from what,
why), written in one transaction, and wins over the settings from then on. Going back is the
same switch the other way. The instance that made the change publishes it on a Redis channel;
every instance (that one included) rereads the table when told, and every
``features_refresh_seconds`` in case a message was missed, and calls its listeners with the new
modes, which tell their connected clients at once (a ``features`` message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.background import stop_task
from algotrade.events import new_event_id
from notification_service.config import Settings
from notification_service.families import FAMILIES, Family, Mode
from notification_service.models import feature_changes, feature_modes

logger = logging.getLogger(__name__)

Listener = Callable[[dict[Family, Mode]], None]


@dataclass(frozen=True)
class Change:
    id: str
    family: Family
    previous: Mode
    mode: Mode
    changed_by: str
    reason: str | None
    changed_at: datetime


def configured_modes(settings: Settings) -> dict[Family, Mode]:
    return {family: getattr(settings, f"ws_feature_{family}") for family in FAMILIES}


class FeatureBoard:
    """The modes this instance applies; `mode` is a dictionary lookup on the hot path."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        settings: Settings,
    ) -> None:
        self._sessions = sessions
        self._redis = redis
        self._channel = f"{settings.redis_prefix}notify:features"
        self._refresh = settings.features_refresh_seconds
        self._configured = configured_modes(settings)
        self.modes: dict[Family, Mode] = dict(self._configured)
        self._listeners: list[Listener] = []

    def mode(self, family: Family) -> Mode:
        return self.modes[family]

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def reload(self) -> bool:
        """Reread the modes; True (and listeners told) when one changed."""
        async with self._sessions() as session:
            rows = (
                await session.execute(select(feature_modes.c.family, feature_modes.c.mode))
            ).all()
        modes = dict(self._configured)
        for family, mode in rows:
            if family in modes:
                modes[family] = mode
        if modes == self.modes:
            return False
        self.modes = modes
        for listener in self._listeners:
            listener(dict(modes))
        return True

    async def set(self, family: Family, mode: Mode, changed_by: str, reason: str | None) -> Change:
        """Change a family's mode (a no-op change is still recorded: the audit says it was
        asked), then announce it to every instance."""
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    select(feature_modes.c.mode)
                    .where(feature_modes.c.family == family)
                    .with_for_update()
                )
            ).first()
            previous: Mode = row[0] if row is not None else self._configured[family]
            upsert = insert(feature_modes).values(family=family, mode=mode, changed_by=changed_by)
            await session.execute(
                upsert.on_conflict_do_update(
                    index_elements=[feature_modes.c.family],
                    set_={
                        "mode": mode,
                        "changed_by": changed_by,
                        "changed_at": upsert.excluded.changed_at,
                    },
                )
            )
            change_id = new_event_id()
            changed_at = (
                await session.execute(
                    feature_changes.insert()
                    .values(
                        id=change_id,
                        family=family,
                        previous=previous,
                        mode=mode,
                        changed_by=changed_by,
                        reason=reason,
                    )
                    .returning(feature_changes.c.changed_at)
                )
            ).scalar_one()
        logger.info("family %s: %s -> %s (by %s)", family, previous, mode, changed_by)
        await self._announce()
        return Change(change_id, family, previous, mode, changed_by, reason, changed_at)

    async def history(self, limit: int) -> list[Change]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(feature_changes)
                    .order_by(feature_changes.c.changed_at.desc(), feature_changes.c.id.desc())
                    .limit(limit)
                )
            ).all()
        return [Change(**row._mapping) for row in rows]

    async def _announce(self) -> None:
        try:
            await self._redis.publish(self._channel, b"changed")
        except Exception as exc:  # the periodic reload gets it there in time
            logger.warning("feature change not announced: %r", exc)
        with contextlib.suppress(Exception):
            await self.reload()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Load the modes, then follow changes until the context ends."""
        try:
            await self.reload()
        except Exception as exc:  # PostgreSQL down at start: the settings' modes until it is up
            logger.warning("feature modes not loaded (%r); using the settings' modes", exc)
        stop = asyncio.Event()
        task = asyncio.create_task(self._follow(stop), name="feature-modes")
        try:
            yield
        finally:
            await stop_task(task, stop)

    async def _follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            pubsub: Any = None
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self._channel)
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=self._refresh)
                    if message is None or message.get("type") == "message":
                        await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("following feature modes: %r; retrying", exc)
                await asyncio.sleep(min(self._refresh, 1.0))
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
