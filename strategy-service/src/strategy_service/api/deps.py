"""Route dependencies as ``Annotated`` aliases: the service's domain objects (one
``ServicesDep``), scoped principals, parameters."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Path

from algotrade.auth import CurrentPrincipal, Principal
from algotrade.errors import BadRequest, Forbidden, NotFound
from algotrade.service import services_dependency
from strategy_service.models import OWNER_LENGTH
from strategy_service.services import StrategyServices

_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_ETAG_VERSION = re.compile(r'^(?:W/)?"?([0-9]{1,10})"?$')


def _owner(principal: Principal) -> Principal:
    if not 0 < len(principal.user_id) <= OWNER_LENGTH or "\x00" in principal.user_id:
        raise Forbidden("the token's subject is not a user id this service can store")
    return principal


def strategy_reader(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("strategies:read")
    return _owner(principal)


def strategy_writer(principal: CurrentPrincipal) -> Principal:
    principal.require_scope("strategies:write")
    return _owner(principal)


def strategy_id_path(
    strategy_id: Annotated[str, Path(description="the strategy's id (a ULID)")],
) -> str:
    """A strategy id; anything that cannot be one is simply not found."""
    normalised = strategy_id.upper()
    if not _ULID.match(normalised):
        raise NotFound(f"there is no strategy {strategy_id[:40]!r}")
    return normalised


def if_match_versions(
    if_match: Annotated[
        str | None,
        Header(
            description='the ETag of the version the change is based on, e.g. "3"',
            max_length=1000,
        ),
    ] = None,
) -> frozenset[int] | None:
    """Versions named by ``If-Match`` (our ETags are ``"<version>"``); None when absent or ``*``.

    Tags are compared by version number; a ``W/`` prefix is tolerated, since this service is
    the one that issued the tag.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = set()
    for candidate in if_match.split(","):
        match = _ETAG_VERSION.match(candidate.strip())
        if match is None:
            raise BadRequest(
                'If-Match must list ETags of this API, e.g. "3" (the version a change is based on)',
                errors=[{"loc": ["header", "If-Match"], "code": "invalid_etag"}],
            )
        versions.add(int(match.group(1)))
    return frozenset(versions)


ServicesDep = Annotated[StrategyServices, Depends(services_dependency(StrategyServices))]
ReaderDep = Annotated[Principal, Depends(strategy_reader)]
WriterDep = Annotated[Principal, Depends(strategy_writer)]
StrategyIdDep = Annotated[str, Depends(strategy_id_path)]
IfMatchDep = Annotated[frozenset[int] | None, Depends(if_match_versions)]


def etag(version: int) -> str:
    """The ETag of a strategy: its current graph version (see docs/strategy-service.md)."""
    return f'"{version}"'
