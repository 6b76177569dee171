"""The Beta1 import entry point for users: accounts with their Beta1 password hashes.

A migrated user logs in with the old password: `api_gateway.passwords` verifies Beta1's
Werkzeug hash once and replaces it with argon2id. Each user's Beta1 id is recorded in
``legacy_ids`` in the same transaction as the account, so a second run changes nothing.

An email address already used by a Beta2 account is never attached to the migrated user (that
would hand Beta1 data to whoever registered the address first); the migrated user gets the
stand-in address instead, and the report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.beta1 import Claim, Outcome, UserRecord, claim_many, imported
from algotrade.events import new_event_id
from api_gateway.models import User, legacy_ids

KIND: Final = "user"
NO_PASSWORD: Final = "!beta1:no-password"  # noqa: S105 (a marker no password matches)
"""Stored for a Beta1 user without a password hash: no password verifies against it."""


def stand_in_email(legacy_id: int) -> str:
    """The login address of a Beta1 user whose email is missing, invalid or taken."""
    return f"beta1-user-{legacy_id}@migrated.invalid"


class UserImporter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def import_batch(self, records: Sequence[UserRecord]) -> list[Outcome]:
        """Import ``records`` in one transaction. Their emails must be distinct (the caller
        gives duplicates in Beta1 their stand-in)."""
        async with self._sessions.begin() as session:
            present = await _present(session, [str(r.legacy_id) for r in records])
            unique = {str(r.legacy_id): r for r in reversed(records)}  # the first of each id
            todo = [r for legacy, r in reversed(unique.items()) if legacy not in present]
            taken = set(
                (
                    await session.scalars(
                        select(User.email).where(User.email.in_([r.email for r in todo]))
                    )
                ).all()
            )
            outcomes = dict(present)
            outcomes.update(await _save_all(session, todo, taken))
        return [outcomes[str(r.legacy_id)] for r in records]

    async def inventory(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(legacy_ids.c.legacy_id, User.id, User.email, User.is_active)
                .join(User, User.id == legacy_ids.c.new_id)
                .where(imported(legacy_ids, KIND, ids))
            )
            return {
                legacy: {"new_id": new_id, "email": email, "is_active": active}
                for legacy, new_id, email, active in rows
            }


async def _present(session: AsyncSession, ids: Sequence[str]) -> dict[str, Outcome]:
    rows = await session.execute(
        select(legacy_ids.c.legacy_id, legacy_ids.c.new_id, legacy_ids.c.flags, User.email)
        .join(User, User.id == legacy_ids.c.new_id)
        .where(imported(legacy_ids, KIND, ids))
    )
    return {
        legacy: Outcome(
            kind=KIND,
            legacy_id=legacy,
            state="present",
            new_id=new_id,
            flags=tuple(flags),
            detail={"email": email},
        )
        for legacy, new_id, flags, email in rows
    }


async def _save_all(
    session: AsyncSession, todo: Sequence[UserRecord], taken: set[str]
) -> dict[str, Outcome]:
    """Claim every Beta1 id, then create the accounts this run holds in one statement."""
    outcomes: dict[str, Outcome] = {}
    for record in todo:
        flags = list(record.flags)
        email = record.email
        if email in taken:
            email = stand_in_email(record.legacy_id)
            flags.append(f"email {record.email} belongs to a Beta2 account; log in as {email}")
        taken.add(email)
        if record.password_hash is None:
            flags.append("no password in Beta1: the user must set one")
        outcomes[str(record.legacy_id)] = Outcome(
            kind=KIND,
            legacy_id=str(record.legacy_id),
            state="migrated",
            new_id=new_event_id(),
            flags=tuple(flags),
            detail={"email": email},
        )
    claimed = await claim_many(
        session,
        legacy_ids,
        KIND,
        [Claim(o.legacy_id, o.new_id or "", o.flags) for o in outcomes.values()],
    )
    now = datetime.now(UTC)
    accounts = [
        {
            "id": outcomes[str(r.legacy_id)].new_id,
            "email": outcomes[str(r.legacy_id)].detail["email"],
            "password_hash": r.password_hash or NO_PASSWORD,
            "roles": ["user"],
            "is_active": r.is_active,
            "created_at": r.created_at or now,
            "password_changed_at": r.created_at or now,
        }
        for r in todo
        if str(r.legacy_id) in claimed
    ]
    if accounts:
        await session.execute(insert(User), accounts)
    taken_by_others = [legacy for legacy in outcomes if legacy not in claimed]
    if taken_by_others:  # a concurrent run got there first
        outcomes.update(await _present(session, taken_by_others))
    return outcomes
