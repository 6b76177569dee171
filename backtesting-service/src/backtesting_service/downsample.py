"""LTTB down-sampling for equity charts; it lives in `algotrade.downsample` (forward tests use
it too)."""

from __future__ import annotations

from algotrade.downsample import lttb_indices

__all__ = ["lttb_indices"]
