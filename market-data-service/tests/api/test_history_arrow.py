"""History as an Arrow IPC stream: same bars as the JSON pages, same auth, bounded ranges."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from market_data_testkit import Service, minute_bars

from algotrade import epoch
from algotrade.columnar import ARROW_STREAM, BAR_SCHEMA, decode_bars
from algotrade_testkit.services import internal_token

ARROW = {"Accept": ARROW_STREAM}
URL = "/api/market/symbols/X/bars?timeframe=1m"


def awkward_bars(n: int) -> list[dict[str, Any]]:
    """Prices whose shortest decimal text is long, so a lossy path would show."""
    rng = np.random.default_rng(3)
    bars = minute_bars(n)
    for bar, noise in zip(bars, rng.random((n, 4)).tolist(), strict=True):
        low = 100.0 + noise[0] / 3
        bar.update(
            open=low + noise[1] / 7,
            high=low + 1.0 + noise[2] / 11,
            low=low,
            close=low + 0.1 + 0.2,
            volume=noise[3] * 1e9 / 3,
        )
    return bars


async def json_bars(service: Service, query: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = f"{URL}&limit=7{query}" + (f"&cursor={cursor}" if cursor else "")
        page = (await service.get(url)).json()
        seen += page["bars"]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


async def test_arrow_and_json_answers_carry_identical_bars(service: Service) -> None:
    assert (
        await service.push({"symbol": "X", "timeframe": "1m", "bars": awkward_bars(40)})
    ).is_success
    query = "&start=2024-01-01T00:03:00Z&end=2024-01-01T00:33:00Z"

    response = await service.client.get(f"{URL}{query}", headers={**service.headers(), **ARROW})
    assert response.status_code == 200
    assert response.headers["content-type"] == ARROW_STREAM
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.schema.remove_metadata().equals(BAR_SCHEMA)
    assert table.schema.metadata == {b"symbol": b"X", b"timeframe": b"1m"}

    bars = decode_bars(response.content)
    expected = await json_bars(service, query)
    assert len(expected) == 30 == len(bars)
    np.testing.assert_array_equal(bars.ts, [epoch.ms_from_iso(b["ts"]) for b in expected])
    for name in ("open", "high", "low", "close", "volume"):
        # Bit for bit: the JSON floats are shortest round-trip text.
        assert bars.field(name).tolist() == [b[name] for b in expected], name

    plain = await service.get(f"{URL}{query}")  # JSON stays the default
    assert plain.headers["content-type"] == "application/json"


async def test_an_arrow_limit_gives_the_first_bars_and_a_cursor_for_the_rest(
    service: Service,
) -> None:
    await service.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(10)})
    headers = {**service.headers(), **ARROW}
    first = await service.client.get(f"{URL}&limit=4", headers=headers)
    assert decode_bars(first.content).ts.tolist() == [
        1_704_067_200_000 + 60_000 * i for i in range(4)
    ]
    rest = await service.client.get(
        f"{URL}&cursor={first.headers['x-next-cursor']}", headers=headers
    )
    assert len(decode_bars(rest.content)) == 6 and "x-next-cursor" not in rest.headers

    empty = await service.client.get(f"{URL}&end=2000-01-01T00:00:00Z", headers=headers)
    assert empty.status_code == 200 and len(decode_bars(empty.content)) == 0


async def test_arrow_reads_need_the_same_credentials_and_scope_as_json(service: Service) -> None:
    await service.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(3)})
    writer_only = internal_token(service.settings, "u2", frozenset({"market:write"}))
    reader = internal_token(service.settings, "u2", frozenset({"market:read"}))
    for accept in ("application/json", ARROW_STREAM):
        anonymous = await service.client.get(URL, headers={"Accept": accept})
        assert anonymous.status_code == 401, accept
        assert anonymous.headers["content-type"] == "application/problem+json"
        wrong_scope = await service.client.get(
            URL, headers={"Accept": accept, "Authorization": f"Bearer {writer_only}"}
        )
        assert wrong_scope.status_code == 403, accept
        allowed = await service.client.get(
            URL, headers={"Accept": accept, "Authorization": f"Bearer {reader}"}
        )
        assert allowed.status_code == 200, accept
        assert allowed.headers["content-type"] == accept


async def test_a_range_over_the_arrow_limit_is_a_problem_not_a_truncated_answer(
    make_service: Any,
) -> None:
    async with make_service(history_range_max_bars=5) as service:
        await service.push({"symbol": "X", "timeframe": "1m", "bars": minute_bars(6)})
        headers = {**service.headers(), **ARROW}
        too_many = await service.client.get(URL, headers=headers)
        assert too_many.status_code == 422
        assert too_many.headers["content-type"] == "application/problem+json"
        problem = too_many.json()
        assert problem["errors"][0]["code"] == "range_too_large"
        assert "more than 5 1m bars" in problem["detail"]
        big_limit = await service.client.get(f"{URL}&limit=6", headers=headers)
        assert big_limit.status_code == 422
        fits = await service.client.get(f"{URL}&end=2024-01-01T00:05:00Z", headers=headers)
        assert fits.status_code == 200 and len(decode_bars(fits.content)) == 5
