"""Services accept only the gateway's internal token; everything else is a 401."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from algotrade.auth import KeySet, Principal, TokenIssuer, TokenVerifier
from algotrade.errors import Forbidden, Unauthorized

KEYS = KeySet(algorithm="HS256", current_kid="k2", secrets={"k2": "b" * 40, "k1": "a" * 40})
USER = Principal(user_id="u1", roles=frozenset({"user"}), scopes=frozenset({"market:write"}))


def verifier(keys: KeySet = KEYS) -> TokenVerifier:
    return TokenVerifier(keys, issuer="gw", audience="internal", token_type="internal")


def issue(keys: KeySet = KEYS, **kw: object) -> str:
    args: dict[str, object] = {"audience": "internal", "token_type": "internal", "ttl_seconds": 60}
    args.update(kw)
    return TokenIssuer(keys, issuer="gw").issue(USER, **args)  # type: ignore[arg-type]


def test_internal_token_round_trips_the_principal() -> None:
    principal = verifier().verify(issue())
    assert principal.user_id == "u1"
    assert principal.scopes == frozenset({"market:write"})
    assert principal.token_id


def test_token_from_a_rotated_out_key_still_verifies_until_it_expires() -> None:
    old = KeySet(algorithm="HS256", current_kid="k1", secrets={"k1": "a" * 40})
    assert verifier().verify(issue(old)).user_id == "u1"


def _claims(**override: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "u1",
        "iss": "gw",
        "aud": "internal",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "j",
        "typ": "internal",
    }
    claims.update(override)
    return claims


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda: jwt.encode(_claims(), None, algorithm="none"), "algorithm"),
        (
            lambda: jwt.encode(_claims(), "b" * 40, algorithm="HS512", headers={"kid": "k2"}),
            "algorithm",
        ),
        (
            lambda: jwt.encode(_claims(), "wrong" * 10, algorithm="HS256", headers={"kid": "k2"}),
            "invalid",
        ),
        (
            lambda: jwt.encode(_claims(), "b" * 40, algorithm="HS256", headers={"kid": "k9"}),
            "unknown key",
        ),
        (lambda: jwt.encode(_claims(), "b" * 40, algorithm="HS256"), "unknown key"),
        (
            lambda: jwt.encode(
                _claims(exp=int(time.time()) - 60), "b" * 40, "HS256", {"kid": "k2"}
            ),
            "expired",
        ),
        (
            lambda: jwt.encode(
                _claims(nbf=int(time.time()) + 600), "b" * 40, "HS256", {"kid": "k2"}
            ),
            "invalid",
        ),
        (lambda: jwt.encode(_claims(iss="evil"), "b" * 40, "HS256", {"kid": "k2"}), "invalid"),
        (lambda: jwt.encode(_claims(aud="algotrade"), "b" * 40, "HS256", {"kid": "k2"}), "invalid"),
        (lambda: jwt.encode(_claims(typ="access"), "b" * 40, "HS256", {"kid": "k2"}), "'access'"),
        (lambda: jwt.encode(_claims(typ=None), "b" * 40, "HS256", {"kid": "k2"}), "invalid"),
        (lambda: "not-a-jwt", "malformed"),
        (lambda: "", "malformed"),
    ],
)
def test_verification_rejects(make_token: Callable[[], str], reason: str) -> None:
    token = make_token()  # minted when the test runs, not at collection, so times are fresh
    with pytest.raises(Unauthorized, match=reason):
        verifier().verify(token)


def test_scopes_are_enforced_and_a_full_session_holds_all() -> None:
    USER.require_scope("market:write")
    with pytest.raises(Forbidden, match="backtests:write"):
        USER.require_scope("backtests:write")
    Principal(user_id="u", scopes=frozenset({"*"})).require_scope("backtests:write")


def test_a_verified_token_is_cached_until_it_expires_and_failures_are_not() -> None:
    v = TokenVerifier(
        KEYS, issuer="gw", audience="internal", token_type="internal", leeway_seconds=0
    )
    token = issue(ttl_seconds=1)
    first = v.verify(token)
    assert v.verify(token) is first  # served from the cache
    time.sleep(1.1)
    with pytest.raises(Unauthorized, match="expired"):
        v.verify(token)
    bad = jwt.encode(_claims(), "wrong" * 10, algorithm="HS256", headers={"kid": "k2"})
    for _ in range(2):
        with pytest.raises(Unauthorized):
            v.verify(bad)


def test_internal_tokens_verify_as_the_user_with_only_the_given_scopes() -> None:
    from algotrade.auth import InternalTokens, internal_verifier
    from algotrade.config import ServiceSettings

    settings = ServiceSettings(environment="test")
    minted = InternalTokens(settings, ttl_seconds=60)
    token = minted.for_user("u7", "market:read")
    principal = internal_verifier(settings).verify(token)
    assert principal.user_id == "u7"
    assert principal.scopes == frozenset({"market:read"})
    assert minted.for_user("u7", "market:read") != token  # no reuse unless asked for

    now = [1_000.0]
    reusing = InternalTokens(settings, ttl_seconds=60, reuse_seconds=10, clock=lambda: now[0])
    first = reusing.for_user("u7", "market:read")
    assert reusing.for_user("u7", "market:read") == first
    now[0] += 11
    assert reusing.for_user("u7", "market:read") != first
