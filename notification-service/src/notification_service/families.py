"""Message families and their modes: how each kind of pushed data moves from polling to push.

- ``rest``: nothing of the family is pushed; clients poll the REST endpoints.
- ``shadow``: pushed with ``shadow: true``; clients keep displaying REST data and may compare,
  and the service's parity checker compares what it pushed with the REST snapshot.
- ``live``: clients display pushed data and stop polling the family.
"""

from __future__ import annotations

from typing import Literal, get_args

Mode = Literal["rest", "shadow", "live"]
Family = Literal[
    "account",
    "positions",
    "orders",
    "intraday_bars",
    "market_status",
    "sessions",
    "backtests",
    "agents",
]
FAMILIES: tuple[Family, ...] = get_args(Family)
