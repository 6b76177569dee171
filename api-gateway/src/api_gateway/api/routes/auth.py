"""Sign-up, sign-in, token refresh, sign-out, the current user and password change."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Depends, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from algotrade.errors import Conflict, Unauthorized, ValidationFailed
from algotrade.events import new_event_id
from algotrade.service import SessionDep
from algotrade.strict_json import api_router
from api_gateway.api.deps import (
    ClientAddress,
    CurrentPrincipal,
    CurrentUser,
    ServicesDep,
    limit_by_address,
    limit_by_principal,
)
from api_gateway.models import User
from api_gateway.passwords import check_password_rules
from api_gateway.schemas import (
    LoginRequest,
    LogoutRequest,
    MePublic,
    PasswordChange,
    RefreshRequest,
    TokenPair,
    UserCreate,
    UserPublic,
    normalise_email,
)
from api_gateway.services import Gateway

router = api_router(prefix="/api/auth", tags=["auth"])

INVALID_LOGIN = "invalid email or password"


def _token_pair(gateway: Gateway, user: User, refresh_token: str) -> TokenPair:
    return TokenPair(
        access_token=gateway.access_tokens.issue(user.id, user.roles),
        refresh_token=refresh_token,
        expires_in=gateway.access_tokens.ttl_seconds,
        refresh_expires_in=gateway.refresh_tokens.ttl_seconds,
    )


def _login_email(raw: str) -> str:
    try:
        return normalise_email(raw)
    except ValueError:
        return raw.strip().casefold()  # cannot match an account; still throttled and timed


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    dependencies=[Depends(limit_by_address("auth"))],
    responses={409: {"description": "an account with this email exists"}},
)
async def register(body: UserCreate, session: SessionDep, gateway: ServicesDep) -> User:
    """Create an account. 409 when the email is taken; 422 lists every password rule broken."""
    check_password_rules(body.password, body.email)
    if await session.scalar(select(User.id).where(User.email == body.email)) is not None:
        raise Conflict("an account with this email already exists")
    user = User(
        id=new_event_id(),
        email=body.email,
        password_hash=await gateway.passwords.hash(body.password),
        roles=["user"],
        is_active=True,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        raise Conflict("an account with this email already exists") from None
    return user


@router.post(
    "/login",
    response_model=TokenPair,
    dependencies=[Depends(limit_by_address("auth"))],
    responses={401: {"description": "a wrong email or password (the same answer for both)"}},
)
async def login(
    body: LoginRequest, session: SessionDep, gateway: ServicesDep, address: ClientAddress
) -> TokenPair:
    """Exchange email and password for an access token and a refresh token.

    A wrong email and a wrong password get the same answer in the same time. Failed attempts
    are counted per account and per address; past the limit the answer is 429 until the window
    passes, whatever the password.
    """
    email = _login_email(body.email)
    await gateway.login_throttle.check(email, address)
    user = await session.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active:
        await gateway.passwords.verify_unknown_user(body.password)
        verified = False
    else:
        verified = await gateway.passwords.verify(user.password_hash, body.password)
    if not verified or user is None:
        gateway.metrics.login_failures.inc()
        await gateway.login_throttle.record_failure(email, address)
        raise Unauthorized(INVALID_LOGIN)
    await gateway.login_throttle.clear_account(email)
    if gateway.passwords.needs_rehash(user.password_hash):
        user.password_hash = await gateway.passwords.hash(body.password)
    issued = await gateway.refresh_tokens.start_family(session, user.id)
    await session.commit()
    return _token_pair(gateway, user, issued.token)


@router.post(
    "/refresh",
    response_model=TokenPair,
    dependencies=[Depends(limit_by_address("write"))],
    responses={401: {"description": "an unknown, spent, revoked or expired refresh token"}},
)
async def refresh(body: RefreshRequest, session: SessionDep, gateway: ServicesDep) -> TokenPair:
    """Spend a refresh token for a new pair. Using a spent one again ends that session."""
    issued = await gateway.refresh_tokens.rotate(session, body.refresh_token)
    user = await session.get(User, issued.user_id)
    if user is None or not user.is_active:
        await gateway.refresh_tokens.revoke_family(session, issued.family_id)
        await session.commit()
        raise Unauthorized("this account is disabled")
    await session.commit()
    return _token_pair(gateway, user, issued.token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(limit_by_address("write"))],
)
async def logout(body: LogoutRequest, session: SessionDep, gateway: ServicesDep) -> None:
    """End the session the refresh token belongs to (its whole family). Idempotent.

    Access tokens already issued stay valid until they expire (at most 15 minutes).
    """
    await gateway.refresh_tokens.revoke_by_token(session, body.refresh_token)
    await session.commit()


@router.get("/me", response_model=MePublic, dependencies=[Depends(limit_by_principal("read"))])
async def me(principal: CurrentPrincipal, session: SessionDep) -> MePublic:
    """The user behind the credential, and the scopes this credential carries."""
    user = await session.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("this account no longer exists")
    return MePublic(
        **UserPublic.model_validate(user).model_dump(),
        scopes=sorted(principal.scopes),
        api_key_id=principal.api_key_id,
    )


@router.post(
    "/password", response_model=TokenPair, dependencies=[Depends(limit_by_principal("auth"))]
)
async def change_password(
    body: PasswordChange,
    principal: CurrentUser,
    session: SessionDep,
    gateway: ServicesDep,
    address: ClientAddress,
) -> TokenPair:
    """Change the password. Every session's refresh tokens are revoked; this answer carries a
    fresh pair for the caller, whose old refresh token is among the revoked."""
    user = await session.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("this account no longer exists")
    await gateway.login_throttle.check(user.email, address)
    if not await gateway.passwords.verify(user.password_hash, body.current_password):
        await gateway.login_throttle.record_failure(user.email, address)
        raise ValidationFailed(
            "the current password is not correct",
            errors=[
                {
                    "loc": ["body", "current_password"],
                    "code": "password_incorrect",
                    "message": "the current password is not correct",
                }
            ],
        )
    check_password_rules(body.new_password, user.email)
    if body.new_password == body.current_password:
        raise ValidationFailed(
            "the new password is the current one",
            errors=[
                {
                    "loc": ["body", "new_password"],
                    "code": "password_unchanged",
                    "message": "choose a password different from the current one",
                }
            ],
        )
    user.password_hash = await gateway.passwords.hash(body.new_password)
    user.password_changed_at = datetime.now(UTC)
    await gateway.refresh_tokens.revoke_all(session, user.id)
    issued = await gateway.refresh_tokens.start_family(session, user.id)
    await session.commit()
    return _token_pair(gateway, user, issued.token)
