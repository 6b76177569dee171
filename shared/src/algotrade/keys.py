"""Signing keys: Ed25519 key pairs for internal tokens, random secrets for access tokens, and
the per-installation key file the embedded stack creates once.

Internal tokens are asymmetric so that only a signer can mint them: the gateway holds one
private key, the backtesting service and its workers hold another whose tokens services accept
only with the scopes it needs (`BACKTESTING_SCOPES`), the forward-test service and its workers a
third, narrowed the same way (`FORWARD_TEST_SCOPES`), the notification service a fourth that
only reads (`NOTIFICATION_SCOPES`), the analytics service a fifth that reads market data and
strategies (`ANALYTICS_SCOPES`), and every other service holds public keys alone. Access
tokens stay HMAC (HS256): the gateway is their only issuer and only verifier.

Nothing here has a default key. ``make run`` writes ``.algotrade/keys.json`` (mode 0600) on first
start and reuses it; tests generate a fresh `InstallationKeys` per session.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from algotrade.errors import ConfigurationError

INTERNAL_ALGORITHM = "EdDSA"
KEYS_FILE = "keys.json"
SignerRole = Literal["gateway", "backtesting", "forward-test", "notification", "analytics"]
BACKTESTING_SCOPES: tuple[str, ...] = ("market:read", "strategies:read")
"""All the backtesting service and its workers ever ask other services for."""
FORWARD_TEST_SCOPES: tuple[str, ...] = ("market:read", "strategies:read")
"""All the forward-test service and its workers ever ask other services for."""
NOTIFICATION_SCOPES: tuple[str, ...] = (
    "sessions:read",
    "backtests:read",
    "agents:read",
    "market:read",
)
"""All the notification service asks for: the current state of what a socket subscribes to."""
ANALYTICS_SCOPES: tuple[str, ...] = ("market:read", "strategies:read")
"""All the analytics service asks for: benchmark bars and strategy names for its reports."""


def random_secret() -> str:
    """A random HMAC secret: 384 bits, URL-safe text."""
    return secrets.token_urlsafe(48)


def new_key_id(prefix: str) -> str:
    """A kid that says what signs with it and when it was made (``gateway-20250101-1a2b3c``)."""
    return f"{prefix}-{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(3)}"


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _pem_text(pem: str) -> bytes:
    # An env file cannot hold newlines; accept PEM written with literal "\n" as well.
    text = pem.strip()
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    return text.encode()


def load_private_key(pem: str, *, name: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM; `ConfigurationError` naming ``name`` otherwise."""
    try:
        key = serialization.load_pem_private_key(_pem_text(pem), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{name} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(
            f"{name} must be an Ed25519 key (openssl genpkey -algorithm ed25519)"
        )
    return key


def load_public_key(pem: str, *, name: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; a private key here is refused (services get none)."""
    if "PRIVATE KEY" in pem:
        raise ConfigurationError(f"{name} holds a private key; services get public keys only")
    try:
        key = serialization.load_pem_public_key(_pem_text(pem))
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{name} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{name} must be an Ed25519 public key")
    return key


@dataclass(frozen=True)
class Signer:
    """One internal-token signer: its kid, private key (PEM) and, if narrowed, its scopes."""

    kid: str
    private_key: str
    scopes: tuple[str, ...] | None = None

    @property
    def public_key(self) -> str:
        return public_pem(load_private_key(self.private_key, name=self.kid))


SIGNER_ROLES: tuple[SignerRole, ...] = (
    "gateway",
    "backtesting",
    "forward-test",
    "notification",
    "analytics",
)
SIGNER_SCOPES: dict[SignerRole, tuple[str, ...] | None] = {
    "gateway": None,
    "backtesting": BACKTESTING_SCOPES,
    "forward-test": FORWARD_TEST_SCOPES,
    "notification": NOTIFICATION_SCOPES,
    "analytics": ANALYTICS_SCOPES,
}


def new_signer(role: SignerRole) -> Signer:
    """A fresh key pair for ``role``, narrowed to the role's scopes (the gateway's is not)."""
    return Signer(new_key_id(role), private_pem(Ed25519PrivateKey.generate()), SIGNER_SCOPES[role])


@dataclass(frozen=True)
class InstallationKeys:
    """Every key one installation needs, and the environment each process gets from them."""

    access_secret: str
    access_kid: str
    signers: dict[SignerRole, Signer]

    @classmethod
    def generate(cls) -> InstallationKeys:
        return cls(
            access_secret=random_secret(),
            access_kid=new_key_id("access"),
            signers={role: new_signer(role) for role in SIGNER_ROLES},
        )

    def with_missing_signers(self) -> InstallationKeys:
        """These keys plus a new signer for every role they lack (a key file written before
        that role existed); the same keys when none is missing."""
        missing = [role for role in SIGNER_ROLES if role not in self.signers]
        if not missing:
            return self
        signers = {**self.signers, **{role: new_signer(role) for role in missing}}
        return InstallationKeys(self.access_secret, self.access_kid, signers)

    def public_keys(self) -> dict[str, str]:
        return {s.kid: s.public_key for s in self.signers.values()}

    def key_scopes(self) -> dict[str, list[str]]:
        return {s.kid: list(s.scopes) for s in self.signers.values() if s.scopes is not None}

    def settings_values(self, role: SignerRole | None) -> dict[str, Any]:
        """Settings values (field names) for a process: every process verifies internal tokens;
        ``role`` names the signer whose private key it holds (``None``: it signs nothing), and
        only the gateway gets the access-token secret."""
        values: dict[str, Any] = {
            "internal_jwt_public_keys": self.public_keys(),
            "internal_jwt_key_scopes": self.key_scopes(),
        }
        if role is not None:
            signer = self.signers[role]
            values["internal_jwt_private_key"] = signer.private_key
            values["internal_jwt_key_id"] = signer.kid
        if role == "gateway":
            values["jwt_secret"] = self.access_secret
            values["jwt_key_id"] = self.access_kid
        return values

    def env(self, role: SignerRole | None) -> dict[str, str]:
        """`settings_values` as environment variables (JSON for the mappings)."""
        return {
            name.upper(): value if isinstance(value, str) else json.dumps(value)
            for name, value in self.settings_values(role).items()
        }

    def deployment_env(self) -> dict[str, str]:
        """The variables ``docker-compose.yml`` reads (``algotrade keys`` prints them): each
        signer's private key under its own name, so that compose hands it to that signer only."""
        gateway, backtesting = self.signers["gateway"], self.signers["backtesting"]
        forward, notification = self.signers["forward-test"], self.signers["notification"]
        analytics = self.signers["analytics"]
        return {
            "JWT_SECRET": self.access_secret,
            "JWT_KEY_ID": self.access_kid,
            "GATEWAY_INTERNAL_JWT_KEY_ID": gateway.kid,
            "GATEWAY_INTERNAL_JWT_PRIVATE_KEY": gateway.private_key,
            "BACKTESTING_INTERNAL_JWT_KEY_ID": backtesting.kid,
            "BACKTESTING_INTERNAL_JWT_PRIVATE_KEY": backtesting.private_key,
            "FORWARD_TEST_INTERNAL_JWT_KEY_ID": forward.kid,
            "FORWARD_TEST_INTERNAL_JWT_PRIVATE_KEY": forward.private_key,
            "NOTIFICATION_INTERNAL_JWT_KEY_ID": notification.kid,
            "NOTIFICATION_INTERNAL_JWT_PRIVATE_KEY": notification.private_key,
            "ANALYTICS_INTERNAL_JWT_KEY_ID": analytics.kid,
            "ANALYTICS_INTERNAL_JWT_PRIVATE_KEY": analytics.private_key,
            **self.env(None),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "access": {"kid": self.access_kid, "secret": self.access_secret},
            "internal": {
                role: {"kid": s.kid, "private_key": s.private_key, "scopes": s.scopes}
                for role, s in self.signers.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstallationKeys:
        signers: dict[SignerRole, Signer] = {}
        for role, entry in data["internal"].items():
            scopes = entry.get("scopes")
            signers[role] = Signer(
                entry["kid"], entry["private_key"], tuple(scopes) if scopes is not None else None
            )
        return cls(
            access_secret=data["access"]["secret"],
            access_kid=data["access"]["kid"],
            signers=signers,
        )


ENV_NAMES = (
    "JWT_SECRET",
    "JWT_KEY_ID",
    "JWT_PREVIOUS_SECRETS",
    "INTERNAL_JWT_PRIVATE_KEY",
    "INTERNAL_JWT_KEY_ID",
    "INTERNAL_JWT_PUBLIC_KEYS",
    "INTERNAL_JWT_KEY_SCOPES",
)
"""Every key variable: the stack sets each child's from its key file and clears the rest."""


def load_or_create_installation_keys(state_dir: Path) -> InstallationKeys:
    """This installation's keys from ``<state_dir>/keys.json``, generated on first use.

    The file is created with mode 0600 (never readable by other users, not even for a moment)
    and then reused, so that tokens and API sessions survive restarts. A file others can read
    is refused rather than silently trusted or fixed.
    """
    path = state_dir / KEYS_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigurationError(
                f"{path} is readable by others (mode {mode:o}); chmod 600 it or delete it to "
                "generate new keys"
            ) from None
        try:
            stored = InstallationKeys.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path} is not a key file ({exc}); delete it") from None
        keys = stored.with_missing_signers()
        if keys is not stored:  # a signer role added since the file was written: keep it too
            _replace_key_file(path, keys)
        return keys
    keys = InstallationKeys.generate()
    with os.fdopen(fd, "w") as out:
        json.dump(keys.to_json(), out, indent=2)
    return keys


def _replace_key_file(path: Path, keys: InstallationKeys) -> None:
    """Rewrite the key file atomically, mode 0600 from the first byte."""
    partial = path.with_suffix(".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys.to_json(), out, indent=2)
    partial.replace(path)
