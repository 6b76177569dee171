"""Down-sampling an equity curve for charts: Largest-Triangle-Three-Buckets (Steinarsson 2013).

LTTB keeps the first and last points and, from each of ``points - 2`` equal buckets, the point
that forms the largest triangle with the point kept before it and the average of the next
bucket, so peaks and troughs survive where plain striding would drop them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def lttb_indices(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], points: int
) -> npt.NDArray[np.int64]:
    """Indices of the ``points`` (at least 3) samples LTTB keeps; all when there are fewer."""
    n = x.shape[0]
    if points >= n:
        return np.arange(n, dtype=np.int64)
    points = max(points, 3)
    edges = np.linspace(1, n - 1, points - 1).astype(np.int64)  # buckets between first/last
    keep = np.empty(points, dtype=np.int64)
    keep[0] = 0
    keep[-1] = n - 1
    previous = 0
    for k in range(points - 2):
        lo, hi = edges[k], edges[k + 1]
        nxt_lo, nxt_hi = edges[k + 1], (edges[k + 2] if k + 2 < points - 1 else n)
        avg_x = x[nxt_lo:nxt_hi].mean()
        avg_y = y[nxt_lo:nxt_hi].mean()
        px, py = x[previous], y[previous]
        area = np.abs((px - avg_x) * (y[lo:hi] - py) - (px - x[lo:hi]) * (avg_y - py))
        previous = int(lo + np.argmax(area))
        keep[k + 1] = previous
    return keep
