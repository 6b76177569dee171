"""Time values in files: ISO forms, dates, and epochs told apart by magnitude."""

from __future__ import annotations

import pytest

from market_data_service.bar_files import BarFileError, parse_time_text, resolve_layout

T = 1_704_153_600  # 2024-01-02T00:00:00Z


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02T00:00:00Z",
        "2024-01-02 00:00:00",
        "2024-01-02",
        "2024.01.02 00:00",
        "2024/01/02",
        "20240102",
        "1704153600",
        "1704153600000",
        "1704153600000000",
        "1704153600000000000",
        "2024-01-02T01:00:00+01:00",
    ],
)
def test_time_forms(text: str) -> None:
    assert parse_time_text(text) == T


@pytest.mark.parametrize("text", ["", "soon", "1704153600.5", "2024-01-02T00:00:00.250Z", "nan"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time_text(text)


def test_layouts() -> None:
    layout = resolve_layout(
        ["<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>"]
    )
    assert (layout.date, layout.time) == (0, 1)
    assert resolve_layout(["Open Time", "O", "H", "L", "C", "Volume"]).time == 0
    with pytest.raises(BarFileError, match="missing column"):
        resolve_layout(["timestamp", "open", "high", "low", "close"])
