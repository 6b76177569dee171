"""Who owns a series and who else may read it.

Every series belongs to an *owner*: the user who imported it, pushed it or whose agents sent
it, or the platform (`PLATFORM`) for the public reference data its providers feed. Symbols are
per-owner namespaces: Alice's ``EURUSD`` and Bob's ``EURUSD`` are two series, so no one can
squat a name or overwrite someone else's bars.

- **Writes** go to the caller's own namespace; the first bar stored under a new symbol
  claims it (a ``symbols`` row, private). Naming another owner (``owner=...``) is refused:
  404 when that owner's symbol is invisible to the caller, 403 when it is visible (shared
  read-only, or the platform's public data). The platform's data is written by its providers
  and by users holding the `MARKET_ADMIN_ROLE` role (``owner=platform``).
- **Reads** without ``owner`` resolve the symbol to the caller's own series, else one shared
  with the caller (the oldest share), else the platform's. With ``owner`` they read that
  owner's series if the caller may (own, shared with them, or the platform's), else 404: a
  private symbol's existence never leaks.
- **Sharing** is per user and read-only; only the owner shares and unshares.

Resolutions are cached in-process for `CACHE_SECONDS` (the latest-N read is a sub-millisecond
Redis read that a PostgreSQL round trip per request would triple). A change made by this
process (a claim, a share) clears the cache at once; one made by another replica is seen
within `CACHE_SECONDS`: a revoked share may still be read for that long.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.auth import MARKET_ADMIN_ROLE, Principal
from algotrade.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market_data_service.models import PLATFORM

PLATFORM_NAME = "platform"
"""How requests and answers name the platform as an owner (stored as `PLATFORM`)."""
OWNER_MAX_LENGTH = 100
OWNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"
MAX_SHARES_PER_SYMBOL = 1_000
CACHE_SECONDS = 2.0
CACHE_ENTRIES = 10_000

_OWNER_RE = re.compile(OWNER_PATTERN)

Access = Literal["owner", "shared", "public"]

_RESOLVE = text(
    """
SELECT s.owner
FROM market.symbols s
LEFT JOIN market.symbol_shares sh
       ON sh.owner = s.owner AND sh.symbol = s.symbol AND sh.grantee = :me
WHERE s.symbol = :symbol AND (s.owner = :me OR s.owner = '' OR sh.grantee IS NOT NULL)
ORDER BY (s.owner = :me) DESC, (sh.grantee IS NOT NULL) DESC, sh.created_at, s.owner
LIMIT 1
"""
)
_VISIBLE = text(
    """
SELECT 1 FROM market.symbol_shares
WHERE owner = :owner AND grantee = :me AND symbol = ANY(CAST(:symbols AS text[]))
LIMIT 1
"""
)
_SHARED_WITH_ME = text(
    """
SELECT owner, symbol FROM market.symbol_shares
WHERE grantee = :me AND (CAST(:symbol AS text) IS NULL OR symbol = :symbol)
"""
)
_CLAIM = text(
    """
INSERT INTO market.symbols (owner, symbol, visibility)
SELECT CAST(:owner AS text), u.symbol, CASE WHEN :owner = '' THEN 'public' ELSE 'private' END
FROM unnest(CAST(:symbols AS text[])) AS u(symbol)
ORDER BY u.symbol
ON CONFLICT (owner, symbol) DO NOTHING
RETURNING symbol
"""
)
_OWNS = text("SELECT 1 FROM market.symbols WHERE owner = :owner AND symbol = :symbol")
_SHARES = text(
    """
SELECT grantee, created_at FROM market.symbol_shares
WHERE owner = :owner AND symbol = :symbol
ORDER BY created_at, grantee
LIMIT :limit
"""
)
_SHARE_COUNT = text(
    "SELECT count(*) FROM market.symbol_shares WHERE owner = :owner AND symbol = :symbol"
)
_SHARE = text(
    """
INSERT INTO market.symbol_shares (owner, symbol, grantee)
VALUES (:owner, :symbol, :grantee)
ON CONFLICT (owner, symbol, grantee) DO UPDATE SET grantee = EXCLUDED.grantee
RETURNING grantee, created_at
"""
)
_UNSHARE = text(
    """
DELETE FROM market.symbol_shares
WHERE owner = :owner AND symbol = :symbol AND grantee = :grantee
RETURNING grantee
"""
)


def parse_owner(raw: str | None, *, loc: Sequence[str] = ("query", "owner")) -> str | None:
    """An ``owner`` parameter as stored (`PLATFORM` for ``platform``), or None when absent;
    a malformed one is a 422 problem."""
    if raw is None:
        return None
    if raw == PLATFORM_NAME:
        return PLATFORM
    if not (0 < len(raw) <= OWNER_MAX_LENGTH) or not _OWNER_RE.match(raw):
        message = f"a user id (up to {OWNER_MAX_LENGTH} characters) or {PLATFORM_NAME!r}"
        raise ValidationFailed(
            f"owner: {message}",
            errors=[{"loc": list(loc), "code": "invalid_owner", "message": message}],
        )
    return raw


def public_owner(owner: str) -> str | None:
    """An owner as answers show it: a user id, or None for the platform."""
    return owner or None


def access_of(owner: str, user_id: str) -> Access:
    if owner == user_id:
        return "owner"
    return "public" if owner == PLATFORM else "shared"


async def claim_symbols(session: AsyncSession, owner: str, symbols: Iterable[str]) -> bool:
    """Record ``owner`` as the owner of the ``symbols`` it has no row for yet, in the caller's
    transaction (a write storing a series' first bars). True when a symbol was new: cached
    resolutions must be forgotten after the commit (`SymbolDirectory.forget`)."""
    names = sorted(set(symbols))
    if not names:
        return False
    claimed = (await session.execute(_CLAIM, {"owner": owner, "symbols": names})).all()
    return bool(claimed)


@dataclass(frozen=True)
class Share:
    user_id: str
    created_at: datetime


class SymbolDirectory:
    """Claims, access checks and shares of symbols (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_seconds: float = CACHE_SECONDS,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._cache_entries = cache_entries
        self._resolved: dict[tuple[str, str, str | None], tuple[str | None, float]] = {}

    def forget(self) -> None:
        """Drop cached resolutions (after a claim or a share changed what they would be)."""
        self._resolved.clear()

    async def resolve_read(self, principal: Principal, symbol: str, owner: str | None) -> str:
        """The owner whose ``symbol`` the caller reads (see the module docstring)."""
        me = principal.user_id
        if owner is not None and owner in (me, PLATFORM):
            return owner
        key = (me, symbol, owner)
        now = time.monotonic()
        cached = self._resolved.get(key)
        if cached is not None and cached[1] > now:
            found = cached[0]
        else:
            found = await self._lookup(me, symbol, owner)
            if len(self._resolved) >= self._cache_entries:
                self._resolved.clear()
            self._resolved[key] = (found, now + self._cache_seconds)
        if found is None:
            raise NotFound(f"no symbol {symbol} of that owner is visible to you")
        return found

    async def _lookup(self, me: str, symbol: str, owner: str | None) -> str | None:
        async with self._sessions() as session:
            if owner is None:
                found = await session.scalar(_RESOLVE, {"me": me, "symbol": symbol})
                return PLATFORM if found is None else str(found)
            shared = await session.scalar(_VISIBLE, {"owner": owner, "me": me, "symbols": [symbol]})
            return owner if shared is not None else None

    async def resolve_write(
        self, principal: Principal, symbols: Iterable[str], owner: str | None
    ) -> str:
        """The owner whose series the caller writes: their own unless ``owner`` names another.
        The platform's needs `MARKET_ADMIN_ROLE` (403 otherwise); another user's is never
        writable: 403 when one of ``symbols`` is shared with the caller, else 404."""
        me = principal.user_id
        if owner is None or owner == me:
            return me
        if owner == PLATFORM:
            if principal.has_role(MARKET_ADMIN_ROLE):
                return PLATFORM
            raise Forbidden(
                "the platform's reference data is read-only; write without 'owner' to store "
                "your own series of this symbol"
            )
        async with self._sessions() as session:
            shared = await session.scalar(
                _VISIBLE, {"owner": owner, "me": me, "symbols": sorted({str(s) for s in symbols})}
            )
        if shared is not None:
            raise Forbidden(
                "this symbol is shared with you read-only; write without 'owner' to store "
                "your own series of it"
            )
        raise NotFound("no symbol of that owner is visible to you")

    async def shared_with(
        self, session: AsyncSession, principal: Principal, symbol: str | None
    ) -> set[tuple[str, str]]:
        """The (owner, symbol) pairs shared with the caller (of ``symbol`` only, if given);
        the caller's own and the platform's are readable as well."""
        rows = (
            await session.execute(_SHARED_WITH_ME, {"me": principal.user_id, "symbol": symbol})
        ).all()
        return {(r[0], r[1]) for r in rows}

    async def require_owned(self, session: AsyncSession, owner: str, symbol: str) -> None:
        if await session.scalar(_OWNS, {"owner": owner, "symbol": symbol}) is None:
            raise NotFound(f"you own no symbol {symbol}")

    async def shares(self, owner: str, symbol: str) -> list[Share]:
        async with self._sessions() as session:
            await self.require_owned(session, owner, symbol)
            rows = (
                await session.execute(
                    _SHARES, {"owner": owner, "symbol": symbol, "limit": MAX_SHARES_PER_SYMBOL}
                )
            ).all()
        return [Share(r[0], r[1]) for r in rows]

    async def share(self, owner: str, symbol: str, grantee: str) -> Share:
        """Let ``grantee`` read ``owner``'s ``symbol`` (idempotent)."""
        if grantee == owner:
            raise ValidationFailed(
                "you cannot share a symbol with yourself",
                errors=[{"loc": ["path", "user_id"], "code": "self_share", "message": grantee}],
            )
        async with self._sessions() as session, session.begin():
            await self.require_owned(session, owner, symbol)
            params: dict[str, Any] = {"owner": owner, "symbol": symbol}
            count = int(await session.scalar(_SHARE_COUNT, params) or 0)
            if count >= MAX_SHARES_PER_SYMBOL:
                raise Conflict(
                    f"{symbol} is shared with {MAX_SHARES_PER_SYMBOL} users already; "
                    "unshare one first"
                )
            row = (await session.execute(_SHARE, {**params, "grantee": grantee})).one()
        self.forget()
        return Share(row[0], row[1])

    async def unshare(self, owner: str, symbol: str, grantee: str) -> None:
        async with self._sessions() as session, session.begin():
            await self.require_owned(session, owner, symbol)
            removed = await session.scalar(
                _UNSHARE, {"owner": owner, "symbol": symbol, "grantee": grantee}
            )
        self.forget()
        if removed is None:
            raise NotFound(f"{symbol} is not shared with {grantee}")
