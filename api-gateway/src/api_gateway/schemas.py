"""Request and response models of the gateway's own endpoints (auth and API keys)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from api_gateway.scopes import SCOPES

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")


def normalise_email(value: str) -> str:
    """One spelling per mailbox: NFKC, trimmed, case-folded (as most providers treat it)."""
    email = unicodedata.normalize("NFKC", value).strip().casefold()
    if len(email) > 254 or not _EMAIL.match(email) or ".." in email.split("@", 1)[1]:
        raise ValueError("not a valid email address")
    return email


def _known_scopes(values: list[str]) -> list[str]:
    unknown = sorted(set(values) - SCOPES)
    if unknown:
        raise ValueError(
            f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}"
        )
    return sorted(set(values))


Email = Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
# The rules (length, not the email, not common...) are checked with the email in hand, see
# `api_gateway.passwords`; this bound only keeps absurd payloads away from the hasher.
Password = Annotated[str, Field(min_length=1, max_length=1024)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Password


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    roles: list[str]
    created_at: datetime


class MePublic(UserPublic):
    """The user behind the credential, and what this credential may do."""

    scopes: list[str]
    api_key_id: str | None = None


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth 2 token type
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_expires_in: int = Field(description="seconds until the refresh token expires")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class LogoutRequest(RefreshRequest):
    pass


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: Annotated[list[str], Field(min_length=1, max_length=50), AfterValidator(_known_scopes)]
    expires_in_days: Annotated[StrictInt | None, Field(ge=1, le=3650)] = None


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    prefix: str = Field(description="the first part of the key, to recognise it in lists")
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the full key; shown only in this response, store it now")


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]
    count: int
