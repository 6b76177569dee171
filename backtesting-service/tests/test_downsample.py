"""LTTB down-sampling keeps the ends and the extremes a chart must show."""

from __future__ import annotations

import numpy as np

from backtesting_service.downsample import lttb_indices
from backtesting_service.worker import split


def test_lttb_keeps_first_last_and_the_spikes() -> None:
    x = np.arange(10_000, dtype=np.float64)
    y = np.sin(x / 500.0)
    y[3_333] = 50.0  # a spike
    y[7_777] = -50.0  # a crash
    keep = lttb_indices(x, y, 100)
    assert len(keep) == 100
    assert keep[0] == 0 and keep[-1] == 9_999
    assert 3_333 in keep and 7_777 in keep
    assert (np.diff(keep) > 0).all()


def test_lttb_returns_everything_when_there_are_few_points() -> None:
    x = np.arange(50, dtype=np.float64)
    assert list(lttb_indices(x, x, 100)) == list(range(50))


def test_split_gives_contiguous_nearly_equal_parts() -> None:
    assert split(list(range(10)), 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split([1, 2], 4) == [[1], [2]]
