"""Token verification for services, and the `Principal` a request acts as.

The gateway authenticates users (passwords, refresh tokens, API keys) and forwards each request
with a short-lived *internal* token (``typ=internal``, audience ``INTERNAL_TOKEN_AUDIENCE``)
carrying the principal. Services accept only that token: a request that reaches a service port
without it is refused, and a bare ``X-User-Id`` header means nothing.

Internal tokens are signed with Ed25519 (EdDSA): a signer (the gateway; the backtesting service
and its workers, narrowed to the scopes they need) holds a private key, services hold only
public keys, so a compromised service cannot mint a credential. Keys carry a ``kid`` so they can
rotate: the current key signs, previous public keys still verify while they are listed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request

from algotrade.config import ServiceSettings
from algotrade.errors import ConfigurationError, Forbidden, Unauthorized
from algotrade.events import new_event_id
from algotrade.keys import INTERNAL_ALGORITHM, load_private_key, load_public_key, public_pem

TokenType = Literal["access", "internal"]

MARKET_ADMIN_ROLE = "market-admin"
"""The role that may write the platform's public reference data in the market data service.

A role, not a scope: a user's own session holds every scope (``*``), while roles are granted
per user by an operator (the gateway gives new users only ``user``). Writing reference data
also needs the ``market:write`` scope, so a read-only API key of an admin writes nothing."""
NOTIFICATIONS_ADMIN_ROLE = "notifications-admin"
"""The role that may switch a message family between rest, shadow and live (with the
``notifications:write`` scope), granted like ``market-admin``."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a user (via a session or an API key) and what it may do."""

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_id: str | None = None
    api_key_id: str | None = None

    def require_scope(self, scope: str) -> None:
        """Raise 403 unless the principal holds ``scope`` (or ``*``, a full user session)."""
        if "*" not in self.scopes and scope not in self.scopes:
            raise Forbidden(f"this credential lacks the {scope!r} scope")

    def has_role(self, role: str) -> bool:
        """Whether the user was granted ``role`` (roles are never implied by ``*``)."""
        return role in self.roles


@dataclass(frozen=True)
class KeySet:
    """The keys of one token kind: the key this process signs with, if any, and every key
    that verifies, by ``kid``.

    For HMAC both are the same secret. For EdDSA the signing key is a private key only a
    signer holds, and the verifying keys are public: holding them mints nothing. A kid in
    ``kid_scopes`` verifies only tokens whose scopes lie within its set, and no roles.
    """

    algorithm: str
    current_kid: str | None
    signing_key: Any
    verifying_keys: Mapping[str, Any]
    kid_scopes: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def hmac(cls, algorithm: str, current_kid: str, secrets: Mapping[str, str]) -> KeySet:
        """HMAC keys: ``secrets[current_kid]`` signs, every secret verifies."""
        return cls(algorithm, current_kid, secrets[current_kid], dict(secrets))

    @classmethod
    def for_access_tokens(cls, settings: ServiceSettings) -> KeySet:
        """The gateway's access-token keys; refuses to exist without ``JWT_SECRET``."""
        if settings.jwt_secret is None:
            raise ConfigurationError(
                "JWT_SECRET is not set: the gateway signs access tokens with it and has no "
                "default (make run generates one in .algotrade/keys.json)"
            )
        secrets = {kid: s.get_secret_value() for kid, s in settings.jwt_previous_secrets.items()}
        secrets[settings.jwt_key_id] = settings.jwt_secret.get_secret_value()
        return cls.hmac(settings.jwt_algorithm, settings.jwt_key_id, secrets)

    @classmethod
    def for_internal_tokens(cls, settings: ServiceSettings, *, signing: bool) -> KeySet:
        """Internal-token keys: the public keys that verify and, with ``signing``, this
        process's private key. Refuses to exist without the keys asked for."""
        if not settings.internal_jwt_public_keys:
            raise ConfigurationError(
                "INTERNAL_JWT_PUBLIC_KEYS is not set: services verify internal tokens with "
                "these Ed25519 public keys ({kid: PEM}) and have no default"
            )
        public = {
            kid: load_public_key(pem, name=f"INTERNAL_JWT_PUBLIC_KEYS[{kid}]")
            for kid, pem in settings.internal_jwt_public_keys.items()
        }
        scopes = {kid: frozenset(s) for kid, s in settings.internal_jwt_key_scopes.items()}
        if not signing:
            return cls(INTERNAL_ALGORITHM, None, None, public, scopes)
        kid = settings.internal_jwt_key_id
        if settings.internal_jwt_private_key is None or not kid:
            raise ConfigurationError(
                "INTERNAL_JWT_PRIVATE_KEY and INTERNAL_JWT_KEY_ID are not set: only a signer "
                "(the gateway, the backtesting and forward-test services and their workers, the "
                "notification and analytics services) mints internal tokens"
            )
        private = load_private_key(
            settings.internal_jwt_private_key.get_secret_value(), name="INTERNAL_JWT_PRIVATE_KEY"
        )
        listed = public.get(kid)
        if listed is not None and public_pem(listed) != public_pem(private):
            raise ConfigurationError(
                f"INTERNAL_JWT_PUBLIC_KEYS[{kid}] is not the public half of "
                "INTERNAL_JWT_PRIVATE_KEY: services would refuse every token signed here"
            )
        return cls(INTERNAL_ALGORITHM, kid, private, public, scopes)


class TokenIssuer:
    """Signs tokens with the current key (the gateway; tests of services)."""

    def __init__(self, keys: KeySet, *, issuer: str) -> None:
        if keys.signing_key is None or keys.current_kid is None:
            raise ConfigurationError("these keys verify only; this process cannot sign tokens")
        self._keys = keys
        self._issuer = issuer

    def issue(
        self,
        principal: Principal,
        *,
        audience: str,
        token_type: TokenType,
        ttl_seconds: int,
        now: float | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "sub": principal.user_id,
            "iss": self._issuer,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_seconds,
            "jti": new_event_id(),
            "typ": token_type,
            "roles": sorted(principal.roles),
            "scopes": sorted(principal.scopes),
        }
        if principal.api_key_id:
            claims["akid"] = principal.api_key_id
        return jwt.encode(
            claims,
            self._keys.signing_key,
            algorithm=self._keys.algorithm,
            headers={"kid": self._keys.current_kid},
        )


class TokenVerifier:
    """Verifies signature, algorithm, kid, expiry, issuer, audience and token type.

    A verified token's principal is remembered until the token expires (at most
    ``cache_seconds``): a token is signed and immutable, and verifying it costs more than many
    whole requests (PyJWT checks base64 in Python). Failures are never cached.
    """

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str,
        token_type: TokenType,
        cache_seconds: float = 30.0,
        cache_entries: int = 10_000,
        leeway_seconds: float = 5.0,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._type = token_type
        self._cache_seconds = cache_seconds
        self._cache_entries = cache_entries
        self._leeway = leeway_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal, expires = self._verify_uncached(token)
        if self._cache_seconds > 0:
            if len(self._verified) >= self._cache_entries:
                self._verified.clear()
            self._verified[token] = (principal, min(expires, now + self._cache_seconds))
        return principal

    def _verify_uncached(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        if header.get("alg") != self._keys.algorithm:
            raise Unauthorized("token algorithm not accepted")
        kid = str(header.get("kid"))
        key = self._keys.verifying_keys.get(kid)
        if key is None:
            raise Unauthorized("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self._keys.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti", "typ"]},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        if claims.get("typ") != self._type:
            raise Unauthorized(f"a {claims.get('typ')!r} token is not accepted here")
        principal = Principal(
            user_id=str(claims["sub"]),
            roles=frozenset(_strings(claims.get("roles"))),
            scopes=frozenset(_strings(claims.get("scopes"))),
            token_id=str(claims["jti"]),
            api_key_id=claims.get("akid"),
        )
        allowed = self._keys.kid_scopes.get(kid)
        if allowed is not None and (principal.roles or not principal.scopes <= allowed):
            raise Unauthorized(f"key {kid!r} may not grant these scopes or roles")
        return principal, float(claims["exp"])


def _strings(value: Any) -> Iterable[str]:
    if not isinstance(value, list):
        return ()
    return (v for v in value if isinstance(v, str))


class InternalTokens:
    """Mints the internal token a call to a service carries: the one credential services accept.

    The gateway mints one per forwarded request; a worker mints one to act for a job's user
    long after that user's request ended. With ``reuse_seconds`` a token is reused for the same
    principal for that long (signing costs tens of microseconds on a hot path), while services
    still see a short-lived token.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        ttl_seconds: int,
        reuse_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
        cache_entries: int = 50_000,
    ) -> None:
        self._issuer = TokenIssuer(
            KeySet.for_internal_tokens(settings, signing=True), issuer=settings.jwt_issuer
        )
        self._audience = settings.internal_token_audience
        self._ttl = ttl_seconds
        self._reuse = min(reuse_seconds, ttl_seconds / 2)
        self._clock = clock
        self._cache_entries = cache_entries
        self._cache: dict[tuple[Any, ...], tuple[str, float]] = {}

    def for_principal(self, principal: Principal) -> str:
        key = (principal.user_id, principal.roles, principal.scopes, principal.api_key_id)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        token = self._issuer.issue(
            principal,
            audience=self._audience,
            token_type="internal",  # noqa: S106 - a token kind, not a secret
            ttl_seconds=self._ttl,
            now=now,
        )
        if self._reuse > 0:
            if len(self._cache) >= self._cache_entries:
                self._cache.clear()
            self._cache[key] = (token, now + self._reuse)
        return token

    def for_user(self, user_id: str, *scopes: str) -> str:
        """A token acting for ``user_id`` with only ``scopes`` (a worker calling a service)."""
        return self.for_principal(Principal(user_id=user_id, scopes=frozenset(scopes)))


def internal_verifier(settings: ServiceSettings) -> TokenVerifier:
    """What every service checks internal tokens with: public keys only."""
    return TokenVerifier(
        KeySet.for_internal_tokens(settings, signing=False),
        issuer=settings.jwt_issuer,
        audience=settings.internal_token_audience,
        token_type="internal",  # noqa: S106 - a token kind, not a secret
    )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the principal of the internal token on this request.

    ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop that
    costs more than a cached verification.
    """
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(bearer_token(request))


def principal_with_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the request's principal, which must hold ``scope`` (403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        principal.require_scope(scope)
        return principal

    return dependency


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
