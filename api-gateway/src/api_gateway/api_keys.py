"""API keys for agents and scripts: ``atk_<id>_<secret>``, stored as a SHA-256 of the secret.

The id is public (it names the key in lists and logs); the secret is 256 random bits shown once.
Verifying a key needs its row, so verified keys are remembered for ``cache_seconds`` per process;
revoking through this process forgets the key at once, other gateway processes within that time.

Keys in use are kept fresh off the request path: `ApiKeys.refreshing` reloads each key used in
the last ``keep_fresh_seconds`` once its verification has less than ``cache_seconds / 2`` to
run, so a key stays verified no longer than ``cache_seconds`` after its row was read, and an
agent beating every few seconds never waits for PostgreSQL (with a reload on the request path,
a heartbeat interval as long as the cache made nearly every heartbeat a query: ~3 ms of the
gateway's 5.6 ms per heartbeat). It looks every ``cache_seconds / 20`` and takes a bounded
share of the keys each time, soonest due first: a thousand keys reloaded at once held the
gateway's requests up for tens of milliseconds every 2.5 s; spread out, they stay spread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.auth import Principal
from algotrade.background import stop_task
from algotrade.errors import Conflict, NotFound, Unauthorized
from api_gateway.models import ApiKey, User
from api_gateway.tokens import digest

logger = logging.getLogger(__name__)

API_KEY_PREFIX = "atk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
KEEP_FRESH_SECONDS = 600.0
"""How long after its last use a key is still reloaded in the background: longer than the
slowest heartbeat an agent may promise (300 s)."""
_CACHE_MAX = 10_000
_RELOAD_CHUNK = 100  # ids per query


def _key_rows(
    ids: Sequence[str],
) -> Select[
    str, str, bytes, list[str], datetime | None, datetime | None, datetime | None, list[str], bool
]:
    """The columns verifying keys needs, of the keys ``ids`` and their users: plain rows, not
    ORM objects, which cost several times as much to build (the reload reads every key in
    use every few seconds)."""
    return (
        select(
            ApiKey.id,
            ApiKey.user_id,
            ApiKey.secret_hash,
            ApiKey.scopes,
            ApiKey.revoked_at,
            ApiKey.expires_at,
            ApiKey.last_used_at,
            User.roles,
            User.is_active,
        )
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.id.in_(ids))
    )


def generate_key() -> tuple[str, str]:
    """A new ``(key_id, full_key)``."""
    key_id = secrets.token_hex(8)
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not key_id or len(key_id) > 32 or len(secret) < 20:
        return None
    return key_id, secret


def display_prefix(key_id: str) -> str:
    return f"{API_KEY_PREFIX}{key_id}"


@dataclass(frozen=True)
class _VerifiedKey:
    """What a key id resolved to; ``principal`` is None when the id is unknown or revoked."""

    secret_hash: bytes
    principal: Principal | None
    refusal: str
    expires_at: datetime | None
    last_used_at: datetime | None
    cached_until: float
    source: tuple[Any, ...] | None = None  # what it was verified from (`_source`)


def _source(row: Any) -> tuple[Any, ...] | None:
    """Every column of a `_key_rows` row that verifying reads, but its last use."""
    if row is None:
        return None
    return (
        row.user_id,
        row.secret_hash,
        tuple(row.scopes),
        row.revoked_at,
        row.expires_at,
        tuple(row.roles),
        row.is_active,
    )


class ApiKeys:
    """Create, list, revoke and authenticate API keys."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_seconds: float,
        max_per_user: int,
        keep_fresh_seconds: float = KEEP_FRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._max_per_user = max_per_user
        self._keep_fresh_seconds = keep_fresh_seconds
        self._clock = clock
        self._cache: dict[str, _VerifiedKey] = {}
        self._used: dict[str, float] = {}  # key id -> when it last authenticated a request
        self._reloading = False
        self._forgotten: set[str] = set()  # forgotten while a reload was under way

    async def create(
        self,
        session: AsyncSession,
        *,
        user_id: str,
        name: str,
        scopes: list[str],
        expires_in_days: int | None,
    ) -> tuple[ApiKey, str]:
        """A new key (the caller commits); returns the row and the full key, shown once."""
        active = await session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        )
        if (active or 0) >= self._max_per_user:
            raise Conflict(f"at most {self._max_per_user} active API keys per user; revoke one")
        key_id, full_key = generate_key()
        _, secret = parse_key(full_key) or ("", "")
        expires_at = (
            datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        )
        row = ApiKey(
            id=key_id,
            user_id=user_id,
            name=name,
            secret_hash=digest(secret),
            scopes=scopes,
            expires_at=expires_at,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        self.forget(key_id)
        return row, full_key

    async def list_for_user(self, session: AsyncSession, user_id: str) -> list[ApiKey]:
        result = await session.execute(
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
        )
        return list(result.scalars())

    async def revoke(self, session: AsyncSession, *, user_id: str, key_id: str) -> None:
        """Revoke one of ``user_id``'s keys (the caller commits). Someone else's key is 404."""
        row = await session.get(ApiKey, key_id)
        if row is None or row.user_id != user_id:
            raise NotFound("no such API key")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        self.forget(key_id)

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)
        if self._reloading:  # the reload may have read it before: its answer is not cached
            self._forgotten.add(key_id)

    async def authenticate(self, key: str) -> Principal:
        """The principal of a valid, unrevoked, unexpired key; 401 otherwise."""
        parsed = parse_key(key)
        if parsed is None:
            raise Unauthorized("malformed API key")
        key_id, secret = parsed
        now = self._clock()
        verified = self._cache.get(key_id)
        fresh = verified is None or verified.cached_until <= now
        if fresh:
            verified = await self._load(key_id, now)
        assert verified is not None
        if verified.principal is None:
            raise Unauthorized(verified.refusal)
        if not hmac.compare_digest(verified.secret_hash, digest(secret)):
            raise Unauthorized("invalid API key")
        if verified.expires_at is not None and verified.expires_at <= datetime.now(UTC):
            raise Unauthorized("API key expired")
        if self._cache_seconds > 0:
            self._used[key_id] = now
        if fresh:
            await self._touch(key_id, verified.last_used_at)
        return verified.principal

    async def _load(self, key_id: str, now: float) -> _VerifiedKey:
        async with self._sessions() as session:
            row = (await session.execute(_key_rows([key_id]))).one_or_none()
        verified = self._verified(row, now)
        # Unknown and revoked ids are remembered too: a flood of bad keys must not become a
        # flood of database queries.
        if self._cache_seconds > 0:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key_id] = verified
        return verified

    def _reverified(self, cached: _VerifiedKey, row: Any, now: float) -> _VerifiedKey:
        """`_verified`, or ``cached`` made valid for longer when its row has not changed (the
        reload's case for nearly every key: it reads every key in use every few seconds)."""
        source = _source(row)
        if source is None or source != cached.source:
            return self._verified(row, now)
        return replace(
            cached, cached_until=now + self._cache_seconds, last_used_at=row.last_used_at
        )

    def _verified(self, row: Any, now: float) -> _VerifiedKey:
        """What a row of `_key_rows`, or None, verifies as from ``now``."""
        verified = _VerifiedKey(
            secret_hash=b"",
            principal=None,
            refusal="invalid API key",
            expires_at=None,
            last_used_at=None,
            cached_until=now + self._cache_seconds,
            source=_source(row),
        )
        if row is not None:
            if row.revoked_at is not None:
                verified = replace(verified, refusal="API key revoked")
            elif row.is_active:
                verified = replace(
                    verified,
                    secret_hash=row.secret_hash,
                    principal=Principal(
                        user_id=row.user_id,
                        roles=frozenset(row.roles),
                        scopes=frozenset(row.scopes),
                        api_key_id=row.id,
                    ),
                    expires_at=row.expires_at,
                    last_used_at=row.last_used_at,
                )
        return verified

    async def reload_in_use(
        self, *, due_within: float | None = None, at_most: int | None = None
    ) -> int:
        """Reload the cached keys used in the last ``keep_fresh_seconds`` (one query per
        `_RELOAD_CHUNK`): all of them, or those whose verification ends within ``due_within``
        seconds, soonest first, at most ``at_most``. Records the use of those used since their
        last load (at most once per `LAST_USED_RESOLUTION`) and forgets the keys not used for
        ``keep_fresh_seconds``; returns how many were reloaded."""
        now = self._clock()
        for key_id, used in list(self._used.items()):
            if now - used > self._keep_fresh_seconds or key_id not in self._cache:
                del self._used[key_id]
                if now - used > self._keep_fresh_seconds:
                    self._cache.pop(key_id, None)
        ids = list(self._used)
        if due_within is not None:
            horizon = now + due_within
            ids = sorted(
                (k for k in ids if self._cache[k].cached_until <= horizon),
                key=lambda k: self._cache[k].cached_until,
            )
        if at_most is not None:
            ids = ids[:at_most]
        if not ids:
            return 0
        loaded_at: dict[str, float] = {}  # when each key's verification was read before
        reloaded: dict[str, _VerifiedKey] = {}
        self._forgotten.clear()
        # Until the cache takes the reloaded keys: a key revoked meanwhile (here, during the
        # queries or the use records) must not come back from what was read before.
        self._reloading = True
        try:
            async with self._sessions() as session:
                # A chunk per query, each turned into its keys before the next is asked for:
                # the event loop serves requests between chunks, which a thousand keys read and
                # verified in one go held up for milliseconds.
                for start in range(0, len(ids), _RELOAD_CHUNK):
                    chunk = ids[start : start + _RELOAD_CHUNK]
                    result = await session.execute(_key_rows(chunk))
                    rows = {row.id: row for row in result}
                    # Valid from ``now``, before the queries: no row read is older than that.
                    for key_id in chunk:
                        cached = self._cache.get(key_id)
                        if cached is not None:
                            loaded_at[key_id] = cached.cached_until - self._cache_seconds
                            reloaded[key_id] = self._reverified(cached, rows.get(key_id), now)
            in_use = [
                key_id
                for key_id, verified in reloaded.items()
                if verified.principal is not None
                and self._used.get(key_id, now) >= loaded_at[key_id]
            ]
            await self._touch_many(in_use, reloaded)
            for key_id in self._forgotten:
                reloaded.pop(key_id, None)
            self._cache.update(reloaded)
        finally:
            self._reloading = False
        return len(reloaded)

    async def _touch_many(self, key_ids: Sequence[str], keys: dict[str, _VerifiedKey]) -> None:
        """Record the use of ``key_ids`` whose recorded use is older than the resolution."""
        now = datetime.now(UTC)
        due = []
        for key_id in key_ids:
            last = keys[key_id].last_used_at
            if last is None or now - last >= LAST_USED_RESOLUTION:
                due.append(key_id)
        if not due:
            return
        async with self._sessions() as session:
            await session.execute(update(ApiKey).where(ApiKey.id.in_(due)).values(last_used_at=now))
            await session.commit()
        for key_id in due:
            keys[key_id] = replace(keys[key_id], last_used_at=now)

    @contextlib.asynccontextmanager
    async def refreshing(self) -> AsyncIterator[ApiKeys]:
        """Reload the keys in use as they come due (see the module doc) until the block ends."""
        stop = asyncio.Event()
        margin = self._cache_seconds / 2  # a key is reloaded once this much of it is left
        every = margin / 10

        async def run() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
                if stop.is_set():
                    return
                # Twice the share that keeps up: a crowd due at once spreads over five looks.
                share = max(_RELOAD_CHUNK, math.ceil(2 * len(self._used) * every / margin))
                try:
                    await self.reload_in_use(due_within=margin, at_most=share)
                except Exception as exc:  # an outage: cached keys expire, requests load them
                    logger.warning("API keys in use not reloaded: %r", exc)

        if self._cache_seconds <= 0:
            yield self
            return
        task = asyncio.create_task(run(), name="api-key-refresh")
        try:
            yield self
        finally:
            await stop_task(task, stop)

    async def _touch(self, key_id: str, last_used_at: datetime | None) -> None:
        """Record use, at most once per `LAST_USED_RESOLUTION` (a write per request is waste)."""
        now = datetime.now(UTC)
        if last_used_at is not None and now - last_used_at < LAST_USED_RESOLUTION:
            return
        async with self._sessions() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now)
            )
            await session.commit()
