"""API keys of the signed-in user: create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import Depends, status

from algotrade.service import SessionDep
from algotrade.strict_json import api_router
from api_gateway.api.deps import CurrentUser, ServicesDep, limit_by_principal
from api_gateway.api_keys import display_prefix
from api_gateway.models import ApiKey
from api_gateway.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic

router = api_router(prefix="/api/api-keys", tags=["api keys"])


def _public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=row.id,
        prefix=display_prefix(row.id),
        name=row.name,
        scopes=list(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    dependencies=[Depends(limit_by_principal("write"))],
    responses={409: {"description": "you hold the most active API keys allowed"}},
)
async def create_api_key(
    body: ApiKeyCreate, principal: CurrentUser, session: SessionDep, gateway: ServicesDep
) -> ApiKeyCreated:
    """Create a key limited to ``scopes``. The full key is in this answer and nowhere else."""
    row, key = await gateway.api_keys.create(
        session,
        user_id=principal.user_id,
        name=body.name,
        scopes=body.scopes,
        expires_in_days=body.expires_in_days,
    )
    await session.commit()
    return ApiKeyCreated(**_public(row).model_dump(), key=key)


@router.get("", response_model=ApiKeysPublic, dependencies=[Depends(limit_by_principal("read"))])
async def list_api_keys(
    principal: CurrentUser, session: SessionDep, gateway: ServicesDep
) -> ApiKeysPublic:
    """The user's keys, newest first, revoked ones included (with ``revoked_at``)."""
    rows = await gateway.api_keys.list_for_user(session, principal.user_id)
    return ApiKeysPublic(data=[_public(row) for row in rows], count=len(rows))


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(limit_by_principal("write"))],
)
async def revoke_api_key(
    key_id: str, principal: CurrentUser, session: SessionDep, gateway: ServicesDep
) -> None:
    """Revoke a key; it fails from the next request on."""
    await gateway.api_keys.revoke(session, user_id=principal.user_id, key_id=key_id)
    await session.commit()
    gateway.api_keys.forget(key_id)
