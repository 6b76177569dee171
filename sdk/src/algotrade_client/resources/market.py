"""Market data: pushing bars, importing files, symbols, history (``/api/market``)."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from algotrade_client import calls
from algotrade_client.calls import JSON, Call, Flow, Rows, segment
from algotrade_client.endpoints import Resource, endpoint
from algotrade_client.frames import ARROW_STREAM, bars_frame
from algotrade_client.waiting import Progress, wait_for

if TYPE_CHECKING:
    import pandas as pd

R = TypeVar("R")

IMPORT_DONE = ("completed", "failed")
UPLOAD_TIMEOUT = 300.0  # the gateway's own timeout for /api/market/imports


def moment(value: str | datetime | None) -> str | None:
    """A query time: ISO-8601 text as given, a datetime as ISO-8601 (naive means UTC)."""
    return value.isoformat() if isinstance(value, datetime) else value


def symbol_segment(symbol: str) -> str:
    """A symbol in a path: ``/`` names the same market as ``-`` and would split the path."""
    return segment(symbol.replace("/", "-"))


class Market(Resource[R]):
    @endpoint
    def push_bars(self, symbol: str, timeframe: str, bars: Sequence[JSON]) -> Flow[JSON]:
        """Push up to 5,000 bars (``ts``, ``open``, ``high``, ``low``, ``close``,
        ``volume``) into your own series. The answer has a status per bar and the counts; a
        rejected bar is not an error (the answer is then a 207)."""
        body = {"symbol": symbol, "timeframe": timeframe, "bars": list(bars)}
        return (yield from self._call(calls.post("/api/market/bars", body)))

    @endpoint
    def import_file(
        self,
        path: str | os.PathLike[str],
        symbol: str,
        timeframe: str,
        *,
        progress: Progress | None = None,
        atomic: bool = False,
        poll: float = 0.5,
        timeout: float = 600.0,
    ) -> Flow[JSON]:
        """Upload a CSV (or gzip CSV, or Parquet) file as ``symbol``'s ``timeframe`` bars and
        wait until the import is done, calling ``progress`` with each status read. The final
        status (``state`` ``completed`` or ``failed``, ``rows_read``, ``accepted``...)."""
        file = Path(path)
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        form = {"symbol": symbol, "timeframe": timeframe, "atomic": "true" if atomic else "false"}
        with file.open("rb") as handle:
            started = yield from self._call(
                Call(
                    "POST",
                    "/api/market/imports",
                    calls.json_object,
                    files={"file": (file.name, handle, kind)},
                    data=form,
                    timeout=UPLOAD_TIMEOUT,
                )
            )
        status_path = f"/api/market/imports/{segment(started['id'])}"
        return (
            yield from wait_for(
                lambda: self._call(calls.get(status_path)),
                lambda status: status["state"] in IMPORT_DONE,
                what=f"import {started['id']}",
                first=started,
                progress=progress,
                poll=poll,
                timeout=timeout,
            )
        )

    @endpoint
    def imports(self) -> Flow[Rows]:
        """Your imports and their progress, newest first."""
        answer = yield from self._call(calls.get("/api/market/imports"))
        return list(answer["imports"])

    @endpoint
    def symbols(self, *, symbol: str | None = None) -> Flow[Rows]:
        """The series you may read (yours, shared with you, the platform's), each with its
        ``owner``, ``access`` and per timeframe its first and last bar and count."""
        answer = yield from self._call(calls.get("/api/market/symbols", {"symbol": symbol}))
        return list(answer["symbols"])

    @endpoint
    def bars(
        self,
        symbol: str,
        timeframe: str,
        *,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        owner: str | None = None,
    ) -> Flow[pd.DataFrame]:
        """History of ``[start, end)`` in one Arrow answer, as a pandas frame indexed by the
        bars' open time (UTC). Needs the ``frames`` extra."""
        params: dict[str, Any] = {
            "timeframe": timeframe,
            "start": moment(start),
            "end": moment(end),
            "owner": owner,
        }
        call = Call(
            "GET",
            f"/api/market/symbols/{symbol_segment(symbol)}/bars",
            bars_frame,
            params=params,
            headers={"Accept": ARROW_STREAM},
        )
        return (yield from self._call(call))
