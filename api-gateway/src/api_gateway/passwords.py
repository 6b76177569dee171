"""Password rules and argon2id hashing.

Hashing is deliberately slow and memory-hard, so it runs in a worker thread (argon2-cffi
releases the GIL) behind a semaphore: a burst of logins must neither stall the event loop nor
allocate ``memory_kib`` for every request at once.

Users migrated from Beta1 keep Beta1's Werkzeug hash (``pbkdf2:sha256:<n>$salt$hex`` or
``scrypt:<n>:<r>:<p>$salt$hex``) until their first login, which verifies it with Werkzeug's own
``check_password_hash`` and replaces it with an argon2id hash (`needs_rehash` is true for any
hash that is not today's argon2id).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from werkzeug.security import check_password_hash

from algotrade.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 128
MIN_DISTINCT_CHARACTERS = 5

# Bounds on a legacy hash's cost, so a stored hash cannot make one login burn minutes of CPU or
# gigabytes of memory (Beta1 used Werkzeug's defaults, far below these).
LEGACY_MAX_PBKDF2_ITERATIONS = 2_000_000
LEGACY_MAX_SCRYPT_WORK = 2**20 * 8  # n * r * p; scrypt needs 128 * n * r * p bytes

# Common passwords of ten or more characters (shorter ones already fail the length rule).
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "0123456789",
        "0987654321",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwerty1234",
        "qwerty12345",
        "asdfghjkl1",
        "zxcvbnm123",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "iloveyou12",
        "letmein123",
        "welcome123",
        "changeme123",
        "administrator",
        "football123",
        "baseball123",
        "sunshine123",
        "trustno1234",
        "abcdefghij",
        "abc1234567",
        "algotrade123",
    }
)


def password_problems(password: str, email: str) -> list[dict[str, Any]]:
    """Every rule ``password`` breaks, as problem+json ``errors`` items (empty when it is fine)."""
    loc = ["body", "password"]
    problems: list[dict[str, Any]] = []

    def add(code: str, message: str) -> None:
        problems.append({"loc": loc, "code": code, "message": message})

    lowered = password.casefold()
    local_part = email.split("@", 1)[0].casefold()
    if len(password) < MIN_LENGTH:
        add("password_too_short", f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        add("password_too_long", f"use at most {MAX_LENGTH} characters")
    if email and (email.casefold() in lowered or (len(local_part) >= 4 and local_part in lowered)):
        add("password_contains_email", "the password must not contain your email address")
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        add(
            "password_too_repetitive",
            f"use at least {MIN_DISTINCT_CHARACTERS} different characters",
        )
    if lowered in COMMON_PASSWORDS:
        add("password_too_common", "this password is among the most commonly used ones")
    return problems


def check_password_rules(password: str, email: str) -> None:
    """Raise 422 with every broken rule."""
    problems = password_problems(password, email)
    if problems:
        raise ValidationFailed("the password does not meet the rules", errors=problems)


class PasswordHasher:
    """argon2id hashing and verification off the event loop."""

    def __init__(
        self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int
    ) -> None:
        self._hasher = Argon2Hasher(
            time_cost=time_cost,
            memory_cost=max(memory_kib, 8 * parallelism),
            parallelism=parallelism,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_unknown_user(self, password: str) -> None:
        """Spend the same time as a real verification, so response times do not reveal
        whether an email is registered."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's settings."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        if is_legacy_hash(password_hash):
            return check_password_hash(password_hash, password)
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def is_legacy_hash(password_hash: str) -> bool:
    """True for a Beta1 (Werkzeug) hash whose cost is within bounds; one beyond them is
    treated as unverifiable, like any malformed hash."""
    method = password_hash.split("$", 1)[0]
    kind, _, args = method.partition(":")
    try:
        if kind == "pbkdf2":
            digest, _, iterations = args.partition(":")
            return (
                digest in {"sha256", "sha512", ""}
                and int(iterations or "600000") <= LEGACY_MAX_PBKDF2_ITERATIONS
            )
        if kind == "scrypt":
            n, r, p = (int(v) for v in (args or "32768:8:1").split(":"))
            return n * r * p <= LEGACY_MAX_SCRYPT_WORK
    except ValueError:
        return False
    return False
