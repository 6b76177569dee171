from __future__ import annotations

from algotrade.migrations import run_env
from api_gateway.models import Base

run_env(Base.metadata)
