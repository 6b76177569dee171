"""Route dependencies as ``Annotated`` aliases: the services, scoped principals, parameters."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from algotrade.auth import Principal, principal_with_scope
from algotrade.bars import normalize_symbol
from algotrade.errors import DependencyUnavailable, ValidationFailed
from algotrade.service import services_dependency
from market_data_service.owners import OWNER_MAX_LENGTH, parse_owner
from market_data_service.services import MarketServices

# Every dependency here is ``async def``: FastAPI runs a plain ``def`` dependency in a worker
# thread, and those hops cost more than the whole latest-N read (see docs/market-data.md).


market_reader = principal_with_scope("market:read")
market_writer = principal_with_scope("market:write")


async def path_symbol(
    symbol: Annotated[str, Path(description="e.g. BTC-USD, btc_usd or SPY", max_length=64)],
) -> str:
    try:
        return normalize_symbol(symbol)
    except ValueError as exc:
        raise ValidationFailed(
            f"invalid symbol: {exc}",
            errors=[{"loc": ["path", "symbol"], "code": "invalid_symbol", "message": str(exc)}],
        ) from None


async def query_owner(
    owner: Annotated[
        str | None,
        Query(
            max_length=OWNER_MAX_LENGTH,
            description="whose series: a user id, or 'platform' for the public reference data; "
            "reads default to your own, then one shared with you, then the platform's; "
            "writes default to your own",
        ),
    ] = None,
) -> str | None:
    """The ``owner`` query parameter as stored (see `market_data_service.owners`)."""
    return parse_owner(owner)


get_services = services_dependency(MarketServices)
ServicesDep = Annotated[MarketServices, Depends(get_services)]
ReaderDep = Annotated[Principal, Depends(market_reader)]
WriterDep = Annotated[Principal, Depends(market_writer)]
SymbolDep = Annotated[str, Depends(path_symbol)]
OwnerDep = Annotated[str | None, Depends(query_owner)]


@contextlib.contextmanager
def dependency_errors(what: str = "the history store") -> Iterator[None]:
    """Turn an unreachable database or Redis into a 503 problem, not a 500."""
    try:
        yield
    except (OperationalError, InterfaceError, OSError, RedisError, TimeoutError) as exc:
        raise DependencyUnavailable(f"{what} is unavailable ({type(exc).__name__})") from None
