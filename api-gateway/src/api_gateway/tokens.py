"""Access tokens (JWT), refresh tokens (opaque, rotated, in families) and internal tokens.

- Access token: a JWT for clients, ``typ=access``, audience ``JWT_AUDIENCE``, 15 minutes,
  HS256 with the current ``kid``; previous keys still verify (``JWT_PREVIOUS_SECRETS``). HMAC
  suits it: the gateway is its only issuer and its only verifier, and no other process gets
  ``JWT_SECRET``.
- Refresh token: ``atr_`` + 256 random bits, stored as a SHA-256 digest. Every use spends it and
  issues the next one in the same *family* (one login). Presenting a spent token again means it
  was copied: the whole family is revoked, the thief's and the owner's copies alike.
- Internal token: what the gateway forwards to services (``typ=internal``, audience
  ``INTERNAL_TOKEN_AUDIENCE``), EdDSA-signed with the gateway's private key (services hold only
  public keys), minted per principal and reused for a few seconds.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from algotrade.auth import InternalTokens as SharedInternalTokens
from algotrade.auth import KeySet, Principal, TokenIssuer, TokenVerifier
from algotrade.errors import Unauthorized
from algotrade.events import new_event_id
from api_gateway.config import Settings
from api_gateway.models import RefreshToken

REFRESH_TOKEN_PREFIX = "atr_"  # noqa: S105 - a prefix, not a secret
_VERIFIED_CACHE_MAX = 50_000


def digest(secret: str) -> bytes:
    """SHA-256 of a high-entropy secret (refresh tokens, API key secrets)."""
    return hashlib.sha256(secret.encode()).digest()


class AccessTokens:
    """Issues and verifies the access tokens clients present to the gateway.

    A verified token is remembered until it expires: a client sends the same token for up to
    15 minutes, and checking its signature and claims again each time is the largest CPU cost
    of a forwarded request. Nothing a token's validity depends on can change while it is cached
    (access tokens are not revocable; keys change only with a restart).
    """

    def __init__(self, settings: Settings) -> None:
        keys = KeySet.for_access_tokens(settings)
        self.ttl_seconds = settings.access_token_ttl_seconds
        self._issuer = TokenIssuer(keys, issuer=settings.jwt_issuer)
        self._audience = settings.jwt_audience
        self._verifier = TokenVerifier(
            keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            token_type="access",  # noqa: S106 - a token kind, not a secret
            cache_seconds=self.ttl_seconds,  # the verifier remembers a token until it expires
            cache_entries=_VERIFIED_CACHE_MAX,
        )

    def issue(self, user_id: str, roles: list[str]) -> str:
        # A session acts as the user: scope "*" (API keys carry narrower scopes).
        principal = Principal(user_id=user_id, roles=frozenset(roles), scopes=frozenset({"*"}))
        return self._issuer.issue(
            principal,
            audience=self._audience,
            token_type="access",  # noqa: S106
            ttl_seconds=self.ttl_seconds,
        )

    def verify(self, token: str) -> Principal:
        return self._verifier.verify(token)


class InternalTokens(SharedInternalTokens):
    """The shared internal-token minter, with the gateway's TTL and per-principal reuse."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(
            settings,
            ttl_seconds=settings.internal_token_ttl_seconds,
            reuse_seconds=settings.internal_token_reuse_seconds,
            clock=clock,
            cache_entries=10_000,
        )


@dataclass(frozen=True)
class IssuedRefreshToken:
    token: str
    user_id: str
    family_id: str


class RefreshTokens:
    """Refresh-token families in the ``gateway.refresh_tokens`` table."""

    def __init__(self, *, ttl_seconds: int) -> None:
        self.ttl_seconds = ttl_seconds

    async def start_family(self, session: AsyncSession, user_id: str) -> IssuedRefreshToken:
        """A new login: a new family with its first token (the caller commits)."""
        return self._add(session, user_id, family_id=new_event_id())

    async def rotate(self, session: AsyncSession, token: str) -> IssuedRefreshToken:
        """Spend ``token`` and issue its successor; the caller commits.

        A spent token presented again revokes its family; that revocation is committed here,
        before the 401, since the caller's transaction will not be.
        """
        row = await self._find(session, token, for_update=True)
        if row is None:
            raise Unauthorized("invalid refresh token")
        now = datetime.now(UTC)
        if row.revoked_at is not None:
            raise Unauthorized("this session was ended; sign in again")
        if row.used_at is not None:
            await self.revoke_family(session, row.family_id)
            await session.commit()
            raise Unauthorized("refresh token reused; the session was ended for safety")
        if row.expires_at <= now:
            raise Unauthorized("refresh token expired; sign in again")
        row.used_at = now
        return self._add(session, row.user_id, family_id=row.family_id)

    async def revoke_by_token(self, session: AsyncSession, token: str) -> bool:
        """Logout: revoke the family of ``token``. False when the token is unknown."""
        row = await self._find(session, token, for_update=False)
        if row is None:
            return False
        await self.revoke_family(session, row.family_id)
        return True

    async def revoke_family(self, session: AsyncSession, family_id: str) -> None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )

    async def revoke_all(self, session: AsyncSession, user_id: str) -> None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )

    async def _find(
        self, session: AsyncSession, token: str, *, for_update: bool
    ) -> RefreshToken | None:
        if not token.startswith(REFRESH_TOKEN_PREFIX):
            return None
        query = select(RefreshToken).where(RefreshToken.token_hash == digest(token))
        if for_update:
            query = query.with_for_update()
        result: RefreshToken | None = (await session.execute(query)).scalar_one_or_none()
        return result

    def _add(self, session: AsyncSession, user_id: str, *, family_id: str) -> IssuedRefreshToken:
        token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
        session.add(
            RefreshToken(
                id=new_event_id(),
                user_id=user_id,
                family_id=family_id,
                token_hash=digest(token),
                expires_at=datetime.now(UTC) + timedelta(seconds=self.ttl_seconds),
            )
        )
        return IssuedRefreshToken(token=token, user_id=user_id, family_id=family_id)
