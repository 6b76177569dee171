"""Time values in files: ISO forms, dates, and epochs told apart by magnitude."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from market_data_service import bar_files
from market_data_service.bar_files import (
    BarFileError,
    parse_time_text,
    read_csv_chunks,
    resolve_layout,
)

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


def test_csv_lines_stay_exact_across_blocks_blank_lines_and_extra_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small blocks make pyarrow's batches end mid-file; every reported line must still be
    # the physical line an editor shows.
    monkeypatch.setattr(bar_files, "CSV_BLOCK_BYTES", 256)
    lines = ["\ufefftimestamp,open,high,low,close,volume"]
    bad: dict[int, str] = {}
    for i in range(300):
        line_no = len(lines) + 1
        stamp = f"{T + 60 * i}"
        if i % 37 == 5:
            lines.append(f"{stamp},1,2")
            bad[line_no] = "invalid_bar"
        elif i % 41 == 7:
            lines.append(f"{stamp},1,2,0.5,oops,1")
            bad[line_no] = "invalid_number"
        elif i % 43 == 9:
            lines.append(f"{stamp},1,2,0.5,1.5,-1")
            bad[line_no] = "negative_volume"
        elif i % 47 == 11:
            lines.append("")  # blank: skipped, not counted
            lines.append(f"{stamp},1,2,0.5,1.5,1,trailing")  # extra cell: read
        else:
            lines.append(f"{stamp},1,2,0.5,1.5,1")
    path = tmp_path / "bars.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    chunks = list(read_csv_chunks(path, symbol="X", timeframe="1m", chunk_rows=50))
    rejected = {r.index: r.reason for c in chunks for r in c.rejections}
    assert rejected == bad
    stored = np.concatenate([c.bars.index for c in chunks])
    good = [n for n, text in enumerate(lines, 1) if n > 1 and text and n not in bad]
    assert stored.tolist() == good
    assert sum(c.rows for c in chunks) == 300
    ts = np.concatenate([c.bars.bars.seconds() for c in chunks])
    assert np.all(np.diff(ts) > 0) and ts[0] == T
