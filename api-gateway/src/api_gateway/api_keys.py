"""API keys for agents and scripts: ``atk_<id>_<secret>``, stored as a SHA-256 of the secret.

The id is public (it names the key in lists and logs); the secret is 256 random bits shown once.
Verifying a key needs its row, so verified keys are remembered for ``cache_seconds`` per process;
revoking through this process forgets the key at once, other gateway processes within that time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.auth import Principal
from algotrade.errors import Conflict, NotFound, Unauthorized
from api_gateway.models import ApiKey, User
from api_gateway.tokens import digest

API_KEY_PREFIX = "atk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
_CACHE_MAX = 10_000


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


class ApiKeys:
    """Create, list, revoke and authenticate API keys."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_seconds: float,
        max_per_user: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._max_per_user = max_per_user
        self._clock = clock
        self._cache: dict[str, _VerifiedKey] = {}

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
        self._cache.pop(key_id, None)
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
        self._cache.pop(key_id, None)

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

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
        if fresh:
            await self._touch(key_id, verified.last_used_at)
        return verified.principal

    async def _load(self, key_id: str, now: float) -> _VerifiedKey:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ApiKey, User.roles, User.is_active)
                    .join(User, User.id == ApiKey.user_id)
                    .where(ApiKey.id == key_id)
                )
            ).one_or_none()
        verified = _VerifiedKey(
            secret_hash=b"",
            principal=None,
            refusal="invalid API key",
            expires_at=None,
            last_used_at=None,
            cached_until=now + self._cache_seconds,
        )
        if row is not None:
            api_key, roles, is_active = row
            if api_key.revoked_at is not None:
                verified = replace(verified, refusal="API key revoked")
            elif is_active:
                verified = replace(
                    verified,
                    secret_hash=api_key.secret_hash,
                    principal=Principal(
                        user_id=api_key.user_id,
                        roles=frozenset(roles),
                        scopes=frozenset(api_key.scopes),
                        api_key_id=api_key.id,
                    ),
                    expires_at=api_key.expires_at,
                    last_used_at=api_key.last_used_at,
                )
        # Unknown and revoked ids are remembered too: a flood of bad keys must not become a
        # flood of database queries.
        if self._cache_seconds > 0:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key_id] = verified
        return verified

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
