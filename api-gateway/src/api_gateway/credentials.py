"""What a client presents, turned into a `Principal`: an access token or an API key.

Accepted: ``Authorization: Bearer <access token>``, ``Authorization: Bearer <API key>`` or
``X-API-Key: <API key>``. Refresh tokens (``atr_...``) and internal tokens are refused here: a
refresh token only buys new tokens at ``/api/auth/refresh``, and an internal token (a different
audience and type) is only for the services behind the gateway.
"""

from __future__ import annotations

from algotrade.auth import Principal
from algotrade.errors import Unauthorized
from api_gateway.api_keys import API_KEY_PREFIX, ApiKeys
from api_gateway.tokens import REFRESH_TOKEN_PREFIX, AccessTokens


class Authenticator:
    def __init__(self, access_tokens: AccessTokens, api_keys: ApiKeys) -> None:
        self._access_tokens = access_tokens
        self._api_keys = api_keys

    async def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        """The principal of this request's credential; 401 when absent or not valid."""
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise Unauthorized("use 'Authorization: Bearer <token or API key>'")
            return await self.authenticate_credential(credential)
        if api_key:
            return await self._api_keys.authenticate(api_key.strip())
        raise Unauthorized("missing credentials: send a bearer token or an X-API-Key header")

    async def authenticate_credential(self, credential: str) -> Principal:
        """A bare token or API key (WebSocket query parameter or first message)."""
        if credential.startswith(API_KEY_PREFIX):
            return await self._api_keys.authenticate(credential)
        if credential.startswith(REFRESH_TOKEN_PREFIX):
            raise Unauthorized("a refresh token is not an access token; use /api/auth/refresh")
        return self._access_tokens.verify(credential)
