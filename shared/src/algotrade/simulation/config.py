"""`BacktestConfig`: everything besides the plan and the bars that decides a backtest's numbers.

The config is frozen and carries a content hash (`BacktestConfig.config_id`), so a result can
say exactly which costs, sizing and annualisation produced it, and two runs with equal ids are
comparable. ``"auto"`` fields are resolved against the bars by `resolve` and the resolved
values are what the result reports.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat

from algotrade.bars import TIMEFRAME_SECONDS, Timeframe

Calendar = Literal["24x7", "xnys"]
Units = Literal["whole", "fractional"]

# Timestamps in `Bars.ts` are epoch milliseconds.
_MS: Final = 1000


class BacktestConfig(BaseModel):
    """Capital, costs, sizing defaults and the market's calendar for one backtest.

    Fees are charged on every fill (entry and exit): ``fee_bps`` of the fill's notional plus
    ``fee_fixed`` in account currency. Slippage moves every market fill ``slippage_bps``
    against the trader (stop fills included; take-profit limit fills get their limit price).
    Without a ``position_size`` node a trade is all-in: as many units as the cash buys after
    fees. ``units="auto"`` trades fractions on 24x7 markets (crypto) and whole units otherwise.
    ``calendar="auto"`` picks ``24x7`` when any bar opens on a Saturday or Sunday (UTC),
    otherwise ``xnys`` (US equities); it drives annualisation (see `algotrade.metrics`).
    ``timeframe`` defaults to the bars' median spacing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    initial_capital: StrictFloat = Field(default=100_000.0, gt=0, le=1e15)
    fee_bps: StrictFloat = Field(default=0.0, ge=0, le=1_000)
    fee_fixed: StrictFloat = Field(default=0.0, ge=0, le=1e9)
    slippage_bps: StrictFloat = Field(default=0.0, ge=0, le=1_000)
    allow_short: StrictBool = True
    units: Literal["auto", "whole", "fractional"] = "auto"
    calendar: Literal["auto", "24x7", "xnys"] = "auto"
    timeframe: Timeframe | None = None

    @property
    def config_id(self) -> str:
        """SHA-256 of the canonical JSON of every field (sorted keys)."""
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()

    def resolve(self, ts: npt.NDArray[np.int64]) -> ResolvedConfig:
        """Fill the ``auto`` fields from the bars' timestamps (epoch ms)."""
        calendar: Calendar
        if self.calendar == "auto":  # only then is every timestamp inspected
            calendar = "24x7" if _has_weekend_bar(ts) else "xnys"
        else:
            calendar = self.calendar
        units: Units
        if self.units == "auto":
            units = "fractional" if calendar == "24x7" else "whole"
        else:
            units = self.units
        timeframe = self.timeframe or infer_timeframe(ts)
        return ResolvedConfig(config=self, calendar=calendar, units=units, timeframe=timeframe)

    def resolve_market(self, *, timeframe: Timeframe, calendar: Calendar) -> ResolvedConfig:
        """Fill the ``auto`` fields from what is known of a market before its bars arrive.

        A forward test cannot infer anything from future bars: it names the session's
        timeframe and the market's calendar. Explicit fields of the config still win, and
        ``units="auto"`` follows the calendar as in `resolve`. A replay matches a backtest of
        the same bars when this gives what `resolve` gives for them.
        """
        resolved_calendar: Calendar = calendar if self.calendar == "auto" else self.calendar
        units: Units
        if self.units == "auto":
            units = "fractional" if resolved_calendar == "24x7" else "whole"
        else:
            units = self.units
        return ResolvedConfig(
            config=self,
            calendar=resolved_calendar,
            units=units,
            timeframe=self.timeframe or timeframe,
        )


class ResolvedConfig(BaseModel):
    """A config with its ``auto`` choices made for particular bars."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    config: BacktestConfig
    calendar: Calendar
    units: Units
    timeframe: str

    @property
    def fractional(self) -> bool:
        return self.units == "fractional"


def _has_weekend_bar(ts: npt.NDArray[np.int64]) -> bool:
    if ts.size == 0:
        return False
    # 1970-01-01 was a Thursday: day index 2 and 3 (mod 7) are Saturday and Sunday.
    weekday = (ts // (86_400 * _MS) + 3) % 7  # Monday = 0
    return bool(np.any(weekday >= 5))


def infer_timeframe(ts: npt.NDArray[np.int64]) -> str:
    """The platform timeframe closest to the median spacing of ``ts`` (``1d`` for < 2 bars).

    Daily equity bars skip weekends and holidays, so the median (not the mean) is used.
    """
    if ts.size < 2:
        return "1d"
    # The first 10,000 gaps decide; a median over millions of bars would cost milliseconds.
    spacing = float(np.median(np.diff(ts[:10_001]))) / _MS
    return min(TIMEFRAME_SECONDS, key=lambda tf: abs(TIMEFRAME_SECONDS[tf] - spacing))


def epoch_ms(moment: datetime) -> int:
    """A datetime as epoch milliseconds (naive datetimes are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * _MS)
