"""Services accept only a signer's internal token; everything else is a 401.

The verification cases run on HMAC keys (how the gateway checks access tokens); the internal
cases below run on Ed25519 keys, where a service holds public keys and can sign nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from algotrade.auth import (
    InternalTokens,
    KeySet,
    Principal,
    TokenIssuer,
    TokenVerifier,
    internal_verifier,
)
from algotrade.config import PLACEHOLDER_SECRET, ServiceSettings
from algotrade.errors import ConfigurationError, Forbidden, Unauthorized
from algotrade.keys import InstallationKeys, private_pem, public_pem
from algotrade_testkit.services import key_settings

KEYS = KeySet.hmac("HS256", "k2", {"k2": "b" * 40, "k1": "a" * 40})
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
    old = KeySet.hmac("HS256", "k1", {"k1": "a" * 40})
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
    settings = ServiceSettings(environment="test", **key_settings("gateway"))
    minted = InternalTokens(settings, ttl_seconds=60)
    token = minted.for_user("u7", "market:read")
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    service = ServiceSettings(environment="test", **key_settings(None))
    principal = internal_verifier(service).verify(token)
    assert principal.user_id == "u7"
    assert principal.scopes == frozenset({"market:read"})
    assert minted.for_user("u7", "market:read") != token  # no reuse unless asked for

    now = [1_000.0]
    reusing = InternalTokens(settings, ttl_seconds=60, reuse_seconds=10, clock=lambda: now[0])
    first = reusing.for_user("u7", "market:read")
    assert reusing.for_user("u7", "market:read") == first
    now[0] += 11
    assert reusing.for_user("u7", "market:read") != first


# ----------------------------------------------------------------- internal tokens, EdDSA


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_by_hand(claims: dict[str, Any], key: bytes, kid: str) -> str:
    """HS256 signed without PyJWT, which refuses a PEM as an HMAC key: the attacker's way."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _internal_claims(**override: object) -> dict[str, Any]:
    return _claims(iss="algotrade-gateway", aud="algotrade-internal", **override)


def test_a_service_holds_no_key_that_signs() -> None:
    service = ServiceSettings(environment="test", **key_settings(None))
    assert service.internal_jwt_private_key is None and service.jwt_secret is None
    with pytest.raises(ConfigurationError, match="INTERNAL_JWT_PRIVATE_KEY"):
        InternalTokens(service, ttl_seconds=60)
    with pytest.raises(ConfigurationError, match="verify only"):
        TokenIssuer(KeySet.for_internal_tokens(service, signing=False), issuer="x")


def test_a_token_signed_with_a_service_held_public_key_is_refused() -> None:
    """Algorithm confusion: the public PEM as an HMAC secret, under the signer's kid."""
    service = ServiceSettings(environment="test", **key_settings(None))
    verifier = internal_verifier(service)
    for kid, pem in service.internal_jwt_public_keys.items():
        forged = _hs256_by_hand(_internal_claims(sub="admin"), pem.encode(), kid)
        with pytest.raises(Unauthorized, match="algorithm"):
            verifier.verify(forged)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_token_forged_with_the_old_published_placeholder_is_refused() -> None:
    verifier = internal_verifier(ServiceSettings(environment="test", **key_settings(None)))
    for kid in ["k1", *key_settings(None)["internal_jwt_public_keys"]]:
        forged = jwt.encode(_internal_claims(), PLACEHOLDER_SECRET, "HS256", {"kid": kid})
        with pytest.raises(Unauthorized, match="algorithm"):
            verifier.verify(forged)


def test_a_token_signed_with_an_unlisted_ed25519_key_is_refused() -> None:
    stranger = Ed25519PrivateKey.generate()
    kid = next(iter(key_settings(None)["internal_jwt_public_keys"]))
    forged = jwt.encode(_internal_claims(), stranger, "EdDSA", {"kid": kid})
    verifier = internal_verifier(ServiceSettings(environment="test", **key_settings(None)))
    with pytest.raises(Unauthorized, match=r"(?i)signature"):
        verifier.verify(forged)


def test_rotation_a_previous_public_key_verifies_while_listed_and_not_once_removed() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    before = ServiceSettings(
        environment="test",
        internal_jwt_private_key=private_pem(old),
        internal_jwt_key_id="gw-old",
        internal_jwt_public_keys={"gw-old": public_pem(old)},
    )
    old_token = InternalTokens(before, ttl_seconds=60).for_user("u1", "market:read")
    # Step 1: services list both keys; step 2: the gateway signs with the new one.
    both = {"gw-old": public_pem(old), "gw-new": public_pem(new)}
    after = ServiceSettings(
        environment="test",
        internal_jwt_private_key=private_pem(new),
        internal_jwt_key_id="gw-new",
        internal_jwt_public_keys=both,
    )
    new_token = InternalTokens(after, ttl_seconds=60).for_user("u1", "market:read")
    assert jwt.get_unverified_header(new_token)["kid"] == "gw-new"
    during = internal_verifier(ServiceSettings(environment="test", internal_jwt_public_keys=both))
    assert during.verify(old_token).user_id == "u1"
    assert during.verify(new_token).user_id == "u1"
    # Step 3: the old public key is removed; its tokens are refused, the new ones still pass.
    done = internal_verifier(
        ServiceSettings(environment="test", internal_jwt_public_keys={"gw-new": public_pem(new)})
    )
    with pytest.raises(Unauthorized, match="unknown key"):
        done.verify(old_token)
    assert done.verify(new_token).user_id == "u1"


def test_the_backtesting_key_signs_only_its_own_scopes() -> None:
    keys = InstallationKeys.generate()
    worker = ServiceSettings(environment="test", **keys.settings_values("backtesting"))
    service = internal_verifier(ServiceSettings(environment="test", **keys.settings_values(None)))
    tokens = InternalTokens(worker, ttl_seconds=60)
    assert service.verify(tokens.for_user("u1", "market:read")).scopes == {"market:read"}
    assert service.verify(tokens.for_user("u1", "strategies:read")).user_id == "u1"
    for wider in (("*",), ("market:write",), ("market:read", "backtests:write")):
        with pytest.raises(Unauthorized, match="may not grant"):
            service.verify(tokens.for_user("u1", *wider))
    with pytest.raises(Unauthorized, match="may not grant"):
        service.verify(
            tokens.for_principal(
                Principal(user_id="u1", roles=frozenset({"admin"}), scopes=frozenset())
            )
        )


def test_misconfigured_internal_keys_refuse_with_a_clear_message() -> None:
    keys = InstallationKeys.generate()
    with pytest.raises(ConfigurationError, match="INTERNAL_JWT_PUBLIC_KEYS is not set"):
        internal_verifier(ServiceSettings(environment="test"))
    gateway = keys.signers["gateway"]
    with pytest.raises(ConfigurationError, match="private key"):
        internal_verifier(
            ServiceSettings(environment="test", internal_jwt_public_keys={"x": gateway.private_key})
        )
    with pytest.raises(ConfigurationError, match="not the public half"):
        InternalTokens(
            ServiceSettings(
                environment="test",
                internal_jwt_private_key=gateway.private_key,
                internal_jwt_key_id=gateway.kid,
                internal_jwt_public_keys={gateway.kid: keys.signers["backtesting"].public_key},
            ),
            ttl_seconds=60,
        )
