"""``GET /api/market/providers``: connection state and gap counters of exchange feeds."""

from __future__ import annotations

from typing import Any

from algotrade.strict_json import api_router
from market_data_service.api.deps import ReaderDep, ServicesDep

router = api_router(prefix="/api/market/providers", tags=["providers"])


@router.get("", summary="Exchange feed status")
async def list_providers(principal: ReaderDep, market: ServicesDep) -> dict[str, Any]:
    providers = []
    if market.coinbase is not None:
        providers.append(market.coinbase.status.as_dict())
    return {"providers": providers}
