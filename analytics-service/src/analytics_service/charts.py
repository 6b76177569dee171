"""Inline SVG charts for the HTML tear sheet, drawn from numpy arrays without a plotting library.

Each builder returns one self-contained ``<svg>`` (no script, no external reference) plus the
legend the page shows above it. A line keeps at most `MAX_POINTS` vertices: longer series keep
each bucket's lowest and highest value, so peaks and troughs survive and a 100k-bar report
stays small and quick to render. The SVG reaches the template as `Markup`, so every
user-supplied label is escaped here. The number and date formats the axes use are the ones the
tear sheet's tables use, so they live here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from markupsafe import Markup, escape

from algotrade import epoch

FloatArray = npt.NDArray[np.float64]
ValueFormat = Literal["pct", "number", "ratio", "count"]

MAX_POINTS: Final = 1_500
DASH: Final = "\u2014"  # what an undefined value shows

FULL_WIDTH: Final = 1040
HALF_WIDTH: Final = 520
_MARGIN_LEFT: Final = 64
_MARGIN_RIGHT: Final = 18
_MARGIN_TOP: Final = 14
_MARGIN_BOTTOM: Final = 28
_MAX_RUNS: Final = 100  # more gaps than this and a line bridges them instead
_MAX_BINS: Final = 400
_TAIL_SHARE: Final = 0.002  # of a histogram's observations left off each end
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)

GRID: Final = "#e5e7eb"
AXIS: Final = "#9ca3af"
ZERO: Final = "#6b7280"
POSITIVE: Final = (26, 152, 80)
NEGATIVE: Final = (215, 48, 39)
CORR_POSITIVE: Final = (178, 24, 43)
CORR_NEGATIVE: Final = (33, 102, 172)


@dataclass(frozen=True)
class Line:
    """One series of a line chart: epoch-ms stamps and values (NaN leaves a gap)."""

    label: str
    ts: FloatArray
    values: FloatArray
    color: str
    width: float = 1.6
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A vertical rule at an instant; everything after it is shaded (the live period)."""

    ts: float
    label: str
    color: str = "#ea580c"


@dataclass(frozen=True)
class VarLine:
    """A vertical dashed rule on the return histogram at a loss of ``var`` (positive)."""

    label: str
    var: float
    color: str


@dataclass(frozen=True)
class LegendItem:
    label: str
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Chart:
    svg: Markup
    legend: tuple[LegendItem, ...] = field(default=())


# -- formats ------------------------------------------------------------------------------


def finite(value: object) -> float | None:
    """``value`` as a finite float, or None for None, NaN, infinities, bools and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def format_pct(value: object, digits: int = 2, *, signed: bool = False) -> str:
    number = finite(value)
    if number is None:
        return DASH
    if round(number * 100, digits) == 0:  # neither "-0.0%" nor "+0.0%"
        return f"{0:.{digits}f}%"
    return f"{number * 100:+,.{digits}f}%" if signed else f"{number * 100:,.{digits}f}%"


def format_number(value: object, digits: int = 2, *, signed: bool = False) -> str:
    number = finite(value)
    if number is None:
        return DASH
    if round(number, digits) == 0:
        return f"{0:.{digits}f}"
    return f"{number:+,.{digits}f}" if signed else f"{number:,.{digits}f}"


def format_count(value: object) -> str:
    number = finite(value)
    return DASH if number is None else f"{round(number):,}"


def format_ms(value: object) -> str:
    """Epoch ms as a UTC date, with the time of day only when it is not midnight."""
    number = finite(value)
    if number is None:
        return DASH
    try:
        moment: datetime = epoch.datetime_from_ms(int(number))
    except (OverflowError, ValueError):
        return DASH
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def format_value(value: object, kind: ValueFormat) -> str:
    if kind == "pct":
        return format_pct(value)
    if kind == "count":
        return format_count(value)
    return format_number(value)


# -- scales and ticks ---------------------------------------------------------------------


def _decimals(step: float) -> int:
    """The fewest decimals (at most 4) that write every multiple of ``step`` exactly."""
    for digits in range(5):
        if abs(round(step, digits) - step) <= abs(step) * 1e-9:
            return digits
    return 4


def nice_ticks(
    lo: float, hi: float, target: int = 5, *, extend: bool = False
) -> tuple[float, float, list[float]]:
    """Round ticks (1, 2, 2.5, 5 x 10^k) inside ``[lo, hi]``, and the domain to draw.

    With ``extend`` the domain widens to the ticks just outside the range (a count axis that
    should end on a labelled value); without it a line keeps the whole height to itself.
    """
    if not hi > lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(target, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)
    if extend:
        lo = math.floor(lo / step + 1e-9) * step
        hi = math.ceil(hi / step - 1e-9) * step
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return lo, hi, [i * step for i in range(first, last + 1)]


def _tick_labels(ticks: Sequence[float], kind: ValueFormat) -> list[str]:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    if kind == "pct":
        digits = _decimals(step * 100)
        return [f"{t * 100:.{digits}f}%" for t in _clean(ticks)]
    if kind == "count":
        return [f"{round(t):,}" for t in ticks]
    if kind == "ratio":
        digits = _decimals(step)
        return [f"{t:.{digits}f}" for t in _clean(ticks)]
    largest = max(abs(t) for t in ticks)
    unit, suffix = (1e9, "B") if largest >= 1e9 else (1e6, "M") if largest >= 1e6 else (1.0, "")
    if unit == 1.0 and largest >= 1e4:
        unit, suffix = 1e3, "k"
    digits = _decimals(step / unit)
    return [f"{t / unit:,.{digits}f}{suffix}" if t else "0" for t in _clean(ticks)]


def _clean(ticks: Sequence[float]) -> list[float]:
    """Ticks with float dust removed, so 0 is never written as -0."""
    return [0.0 if abs(t) < 1e-12 else t for t in ticks]


_FIXED_STEPS_MS: Final = tuple(
    s * 1000
    for s in (60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600)
)
_MONTH_STEPS: Final = (1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200)


def time_ticks(t0: float, t1: float, target: int = 7) -> list[tuple[float, str]]:
    """Calendar-aligned UTC ticks between epoch-ms ``t0`` and ``t1`` with their labels."""
    span = t1 - t0
    if span <= 0:
        return [(t0, format_ms(t0))]
    for step in _FIXED_STEPS_MS:
        if span / step <= target:
            first = math.ceil(t0 / step) * step
            ticks = [float(first + i * step) for i in range(int((t1 - first) // step) + 1)]
            return [(t, _intraday_label(t, step)) for t in ticks]
    start = epoch.datetime_from_ms(int(t0))
    end = epoch.datetime_from_ms(int(t1))
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    step_months = next((m for m in _MONTH_STEPS if months / m <= target), _MONTH_STEPS[-1])
    index = start.year * 12 + start.month - 1
    index += -index % step_months
    out: list[tuple[float, str]] = []
    while True:
        moment = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
        ms = float(epoch.ms_from_datetime(moment))
        if ms > t1:
            break
        if ms >= t0:
            label = (
                str(moment.year)
                if step_months >= 12
                else f"{_MONTHS[moment.month - 1]} {moment.year}"
            )
            out.append((ms, label))
        index += step_months
    return out


def _intraday_label(ts: float, step: int) -> str:
    moment: datetime = epoch.datetime_from_ms(int(ts))
    day = f"{moment.day} {_MONTHS[moment.month - 1]}"
    if step >= 86_400_000 or moment.hour == moment.minute == 0:
        return day
    return moment.strftime("%H:%M")


@dataclass(frozen=True)
class _Frame:
    """The plot rectangle of a chart and its linear scales."""

    width: float
    height: float
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    left: float = _MARGIN_LEFT
    right: float = _MARGIN_RIGHT
    top: float = _MARGIN_TOP
    bottom: float = _MARGIN_BOTTOM

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.top

    @property
    def y1(self) -> float:
        return self.height - self.bottom

    def x(self, value: FloatArray | float) -> FloatArray:
        span = self.x_hi - self.x_lo or 1.0
        return np.asarray(
            self.x0 + (np.asarray(value, dtype=np.float64) - self.x_lo) / span * (self.x1 - self.x0)
        )

    def y(self, value: FloatArray | float) -> FloatArray:
        span = self.y_hi - self.y_lo or 1.0
        return np.asarray(
            self.y1 - (np.asarray(value, dtype=np.float64) - self.y_lo) / span * (self.y1 - self.y0)
        )


# -- SVG pieces ---------------------------------------------------------------------------


def _open_svg(width: float, height: float, label: str, *, fluid: bool = True) -> str:
    size = (
        'width="100%" style="display:block;height:auto"'
        if fluid
        else f'width="{width:.0f}" height="{height:.0f}" style="max-width:100%;height:auto"'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'{size} role="img" aria-label="{escape(label)}" font-size="11" fill="#4b5563">'
    )


def _points(xs: FloatArray, ys: FloatArray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist(), strict=True))


def _y_axis(frame: _Frame, ticks: Sequence[float], kind: ValueFormat) -> list[str]:
    parts: list[str] = []
    for tick, label in zip(ticks, _tick_labels(ticks, kind), strict=True):
        y = float(frame.y(tick))
        parts.append(
            f'<line x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}"/>'
            f'<text x="{frame.x0 - 8:.1f}" y="{y + 3.5:.1f}" text-anchor="end">{label}</text>'
        )
    return parts


def _time_axis(frame: _Frame) -> list[str]:
    parts = [
        f'<line x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{frame.y1:.1f}" y2="{frame.y1:.1f}" '
        f'stroke="{AXIS}"/>'
    ]
    target = max(3, round((frame.x1 - frame.x0) / 120))
    for ts, label in time_ticks(frame.x_lo, frame.x_hi, target):
        x = float(frame.x(ts))
        anchor = "start" if x - frame.x0 < 24 else "end" if frame.x1 - x < 24 else "middle"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.y1:.1f}" y2="{frame.y1 + 4:.1f}" '
            f'stroke="{AXIS}"/>'
            f'<text x="{x:.1f}" y="{frame.y1 + 17:.1f}" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    return parts


def _value_axis(frame: _Frame, ticks: Sequence[float], kind: ValueFormat) -> list[str]:
    """A numeric x axis (the histogram's returns)."""
    parts = [
        f'<line x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{frame.y1:.1f}" y2="{frame.y1:.1f}" '
        f'stroke="{AXIS}"/>'
    ]
    for tick, label in zip(ticks, _tick_labels(ticks, kind), strict=True):
        x = float(frame.x(tick))
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.y1:.1f}" y2="{frame.y1 + 4:.1f}" '
            f'stroke="{AXIS}"/>'
            f'<text x="{x:.1f}" y="{frame.y1 + 17:.1f}" text-anchor="middle">{label}</text>'
        )
    return parts


def _runs(finite_mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in the mask."""
    padded = np.concatenate(([False], finite_mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def minmax_indices(values: FloatArray, points: int) -> npt.NDArray[np.int64]:
    """Indices of at most ``points`` samples: the ends, and each bucket's lowest and highest.

    Every peak and trough survives, so the line's envelope at screen resolution is the full
    series'. Chosen over LTTB (`algotrade.downsample`), whose per-bucket Python loop costs
    about 40 ms a line at 1,500 points, half a second for a report with seven long lines;
    this is a few vectorised passes.
    """
    n = values.size
    if n <= max(points, 4):
        return np.arange(n, dtype=np.int64)
    inner = values[1:-1]
    size = math.ceil(inner.size / max((points - 2) // 2, 1))
    rows = math.ceil(inner.size / size)
    pad = rows * size - inner.size
    low = np.concatenate((inner, np.full(pad, np.inf))).reshape(rows, size).argmin(axis=1)
    high = np.concatenate((inner, np.full(pad, -np.inf))).reshape(rows, size).argmax(axis=1)
    base = 1 + np.arange(rows, dtype=np.int64) * size
    chosen = np.concatenate(([0], base + low, base + high, [n - 1])).astype(np.int64)
    return np.unique(chosen)


def downsample(
    ts: FloatArray, values: FloatArray, points: int = MAX_POINTS
) -> list[tuple[FloatArray, FloatArray]]:
    """The finite stretches of a series, each cut down by `minmax_indices`, within ``points``.

    A gap (NaN) splits the line; with more than `_MAX_RUNS` stretches the gaps are bridged, so a
    ragged series cannot multiply the vertex count.
    """
    mask = np.isfinite(values) & np.isfinite(ts)
    runs = _runs(mask)
    if len(runs) > _MAX_RUNS:
        keep = np.flatnonzero(mask)
        ts, values = ts[keep], values[keep]
        runs = [(0, int(keep.size))]
    total = sum(stop - start for start, stop in runs)
    out: list[tuple[FloatArray, FloatArray]] = []
    for start, stop in runs:
        if stop - start < 2:
            continue
        budget = max(3, math.floor(points * (stop - start) / total))
        x, y = ts[start:stop], values[start:stop]
        index = minmax_indices(y, min(budget, points))
        out.append((x[index], y[index]))
    return out


# -- charts -------------------------------------------------------------------------------


def line_chart(
    lines: Sequence[Line],
    *,
    label: str,
    kind: ValueFormat,
    width: int = FULL_WIDTH,
    height: int = 300,
    markers: Sequence[Marker] = (),
    zero_line: bool = False,
) -> Chart | None:
    """Lines over a UTC time axis; None when no line has two finite points."""
    # two vertices a pixel column is all a line can show (min and max); more only adds bytes
    points = min(MAX_POINTS, 2 * (width - _MARGIN_LEFT - _MARGIN_RIGHT))
    pieces = [(line, downsample(line.ts, line.values, points)) for line in lines]
    pieces = [(line, runs) for line, runs in pieces if runs]
    if not pieces:
        return None
    xs = np.concatenate([x for _, runs in pieces for x, _ in runs])
    ys = np.concatenate([y for _, runs in pieces for _, y in runs])
    x_lo, x_hi = float(xs.min()), float(xs.max())
    for marker in markers:
        x_lo, x_hi = min(x_lo, marker.ts), max(x_hi, marker.ts)
    y_min, y_max = float(ys.min()), float(ys.max())
    if zero_line:
        y_min, y_max = min(y_min, 0.0), max(y_max, 0.0)
    pad = (y_max - y_min) * 0.04
    y_lo, y_hi, ticks = nice_ticks(y_min - pad, y_max + pad, max(3, height // 60))
    frame = _Frame(width, height, x_lo, x_hi, y_lo, y_hi)
    parts = [_open_svg(width, height, label), *_y_axis(frame, ticks, kind)]
    for marker in markers:
        at = float(frame.x(marker.ts))
        # the label sits right of the rule, or left of it when the rule is near the right edge
        near_edge = frame.x1 - at < 90
        parts.append(
            f'<rect x="{at:.1f}" y="{frame.y0:.1f}" width="{max(frame.x1 - at, 0):.1f}" '
            f'height="{frame.y1 - frame.y0:.1f}" fill="{marker.color}" fill-opacity="0.06"/>'
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{frame.y0:.1f}" y2="{frame.y1:.1f}" '
            f'stroke="{marker.color}" stroke-width="1.5" stroke-dasharray="5 4"/>'
            f'<text x="{at - 6 if near_edge else at + 6:.1f}" y="{frame.y0 + 12:.1f}" '
            f'text-anchor="{"end" if near_edge else "start"}" fill="{marker.color}" '
            f'font-weight="600">{escape(marker.label)}</text>'
        )
    if zero_line and y_lo < 0 < y_hi:
        zero = float(frame.y(0.0))
        parts.append(
            f'<line x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{zero:.1f}" y2="{zero:.1f}" '
            f'stroke="{ZERO}" stroke-width="1"/>'
        )
    for line, runs in pieces:
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        for x, y in runs:
            parts.append(
                f'<polyline fill="none" stroke="{line.color}" stroke-width="{line.width}" '
                f'stroke-linejoin="round" stroke-linecap="round"{dash} '
                f'points="{_points(frame.x(x), frame.y(y))}"/>'
            )
    parts.extend(_time_axis(frame))
    parts.append("</svg>")
    legend = tuple(LegendItem(line.label, line.color, line.dashed) for line, _ in pieces)
    return Chart(Markup("".join(parts)), legend)  # noqa: S704 - labels escaped above


def underwater_chart(
    ts: FloatArray, drawdown: FloatArray, *, width: int = FULL_WIDTH, height: int = 220
) -> Chart | None:
    """The drawdown (positive fractions) as an area hanging below zero."""
    runs = downsample(ts, -np.abs(drawdown))
    if not runs:
        return None
    deepest = min(float(y.min()) for _, y in runs)
    y_lo, _, ticks = nice_ticks(min(deepest * 1.05, -0.001), 0.0, max(3, height // 55), extend=True)
    x_lo = min(float(x[0]) for x, _ in runs)
    x_hi = max(float(x[-1]) for x, _ in runs)
    frame = _Frame(width, height, x_lo, x_hi, y_lo, 0.0)
    parts = [_open_svg(width, height, "Drawdown"), *_y_axis(frame, ticks, "pct")]
    zero = float(frame.y(0.0))
    for x, y in runs:
        px, py = frame.x(x), frame.y(y)
        outline = _points(px, py)
        parts.append(
            f'<polygon fill="#dc2626" fill-opacity="0.22" stroke="none" '
            f'points="{px[0]:.1f},{zero:.1f} {outline} {px[-1]:.1f},{zero:.1f}"/>'
            f'<polyline fill="none" stroke="#b91c1c" stroke-width="1.2" stroke-linejoin="round" '
            f'points="{outline}"/>'
        )
    parts.append(
        f'<line x1="{frame.x0:.1f}" x2="{frame.x1:.1f}" y1="{zero:.1f}" y2="{zero:.1f}" '
        f'stroke="{ZERO}"/>'
    )
    parts.extend(_time_axis(frame))
    parts.append("</svg>")
    return Chart(Markup("".join(parts)), (LegendItem("Drawdown from peak", "#dc2626"),))  # noqa: S704


def histogram_chart(
    edges: FloatArray,
    counts: FloatArray,
    var_lines: Sequence[VarLine] = (),
    *,
    width: int = HALF_WIDTH,
    height: int = 280,
) -> Chart | None:
    """Bar returns per bin, losses red and gains green, with VaR rules at ``-var``."""
    if edges.size < 2 or counts.size != edges.size - 1 or not np.isfinite(edges).all():
        return None
    counts = np.nan_to_num(counts, nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
    if counts.size > _MAX_BINS:  # merge neighbours; a bar under a pixel wide says nothing
        group = math.ceil(counts.size / _MAX_BINS)
        padded = np.concatenate((counts, np.zeros(-counts.size % group)))
        counts = padded.reshape(-1, group).sum(axis=1)
        edges = np.append(edges[:-1:group], edges[-1])[: counts.size + 1]
    first, last, below, above = _core_bins(counts)
    counts, edges = counts[first : last + 1], edges[first : last + 2]
    x_min = min([float(edges[0]), *(-v.var for v in var_lines)])
    x_max = max([float(edges[-1]), *(-v.var for v in var_lines)])
    x_lo, x_hi, x_ticks = nice_ticks(x_min, x_max, max(3, width // 110))
    _, y_hi, y_ticks = nice_ticks(
        0.0, max(float(counts.max()), 1.0), max(3, height // 60), extend=True
    )
    frame = _Frame(width, height, x_lo, x_hi, 0.0, y_hi, left=52)
    parts = [_open_svg(width, height, "Return distribution"), *_y_axis(frame, y_ticks, "count")]
    lefts, rights = frame.x(edges[:-1]), frame.x(edges[1:])
    tops, base = frame.y(counts), float(frame.y(0.0))
    centres = (edges[:-1] + edges[1:]) / 2
    gap = 0.6 if (frame.x1 - frame.x0) / counts.size > 4 else 0.0
    for left, right, top, centre, count in zip(
        lefts.tolist(),
        rights.tolist(),
        tops.tolist(),
        centres.tolist(),
        counts.tolist(),
        strict=True,
    ):
        if count <= 0:
            continue
        color = "#dc2626" if centre < 0 else "#16a34a"
        parts.append(
            f'<rect x="{left + gap:.1f}" y="{top:.1f}" '
            f'width="{max(right - left - 2 * gap, 0.4):.1f}" '
            f'height="{base - top:.1f}" fill="{color}" fill-opacity="0.75"/>'
        )
    if x_lo < 0 < x_hi:
        x = float(frame.x(0.0))
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.y0:.1f}" y2="{frame.y1:.1f}" '
            f'stroke="{ZERO}" stroke-width="1"/>'
        )
    for var in var_lines:
        x = float(frame.x(-var.var))
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.y0:.1f}" y2="{frame.y1:.1f}" '
            f'stroke="{var.color}" stroke-width="1.6" stroke-dasharray="5 3"/>'
        )
    for hidden, x, anchor, text in (
        (below, frame.x0 + 4, "start", f"\u2039 {below:,.0f} further left"),
        (above, frame.x1 - 4, "end", f"{above:,.0f} further right \u203a"),
    ):
        if hidden:
            parts.append(
                f'<text x="{x:.1f}" y="{frame.y0 + 10:.1f}" text-anchor="{anchor}" '
                f'font-size="10">{text}</text>'
            )
    parts.extend(_value_axis(frame, x_ticks, "pct"))
    parts.append("</svg>")
    legend = (
        LegendItem("Losing bars", "#dc2626"),
        LegendItem("Winning bars", "#16a34a"),
        *(LegendItem(v.label, v.color, dashed=True) for v in var_lines),
    )
    return Chart(Markup("".join(parts)), legend)  # noqa: S704 - labels escaped above


def _core_bins(counts: FloatArray) -> tuple[int, int, float, float]:
    """The first and last bin to draw and the counts left out below and above.

    The outer bins holding `_TAIL_SHARE` of the observations on either side are cut, so a few
    crash days do not squeeze the body of the distribution into a sliver.
    """
    total = float(counts.sum())
    if total <= 0:
        return 0, counts.size - 1, 0.0, 0.0
    cumulative = np.cumsum(counts)
    tail = total * _TAIL_SHARE
    first = int(np.searchsorted(cumulative, tail, side="right"))
    last = int(np.searchsorted(cumulative, total - tail, side="left"))
    first, last = min(first, last), max(first, last)
    below = float(cumulative[first - 1]) if first > 0 else 0.0
    return first, last, below, total - float(cumulative[last])


def _diverging(
    value: float, scale: float, positive: tuple[int, int, int], negative: tuple[int, int, int]
) -> tuple[str, float]:
    """The colour of ``value`` on a white-centred scale saturating at ``scale``, and its
    intensity (0..1) so the caller can pick a readable text colour."""
    t = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    t = t**0.8  # small values still show a tint
    end = positive if value >= 0 else negative
    rgb = (round(255 + (c - 255) * t) for c in end)
    return "#{:02x}{:02x}{:02x}".format(*rgb), t


def monthly_heatmap(
    returns: Mapping[tuple[int, int], float | None], *, width: int = FULL_WIDTH
) -> Chart | None:
    """Years down, months across, each cell's return in %, and the compounded year at the end."""
    if not returns:
        return None
    years = sorted({year for year, _ in returns})
    label_w, gap, cell_h, head_h = 52.0, 12.0, 26.0, 22.0
    cell_w = (width - label_w - gap) / 13
    height = head_h + cell_h * len(years) + 4
    month_values = [abs(v) for v in returns.values() if v is not None]
    month_scale = float(np.percentile(month_values, 95)) if month_values else 0.0
    yearly: dict[int, float | None] = {}
    for year in years:
        values = [returns.get((year, m)) for m in range(1, 13)]
        known = [v for v in values if v is not None]
        yearly[year] = float(np.prod([1 + v for v in known]) - 1) if known else None
    year_values = [abs(v) for v in yearly.values() if v is not None]
    year_scale = float(np.percentile(year_values, 95)) if year_values else 0.0
    parts = [_open_svg(width, height, "Monthly returns")]
    for column, name in enumerate((*_MONTHS, "Year")):
        x = label_w + column * cell_w + (gap if column == 12 else 0) + cell_w / 2
        weight = ' font-weight="600"' if column == 12 else ""
        parts.append(
            f'<text x="{x:.1f}" y="{head_h - 8:.1f}" text-anchor="middle"{weight}>{name}</text>'
        )
    for row, year in enumerate(years):
        y = head_h + row * cell_h
        parts.append(
            f'<text x="{label_w - 10:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end" '
            f'font-weight="600">{year}</text>'
        )
        for column in range(13):
            present = column == 12 or (year, column + 1) in returns
            if not present:
                continue
            value = yearly[year] if column == 12 else returns[(year, column + 1)]
            scale = year_scale if column == 12 else month_scale
            x = label_w + column * cell_w + (gap if column == 12 else 0)
            name = "Year" if column == 12 else _MONTHS[column]
            if value is None:
                fill, ink = "#f3f4f6", "#6b7280"
            else:
                fill, t = _diverging(value, scale, POSITIVE, NEGATIVE)
                ink = "#ffffff" if t > 0.62 else "#1f2937"
            text = format_pct(value, 1)
            parts.append(
                f"<g><title>{name} {year}: {format_pct(value, 2)}</title>"
                f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{cell_w - 2:.1f}" '
                f'height="{cell_h - 2:.1f}" rx="3" fill="{fill}"/>'
                f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="middle" '
                f'fill="{ink}">{text}</text></g>'
            )
    parts.append("</svg>")
    legend = (
        LegendItem("Loss", "#{:02x}{:02x}{:02x}".format(*NEGATIVE)),
        LegendItem("Gain", "#{:02x}{:02x}{:02x}".format(*POSITIVE)),
    )
    return Chart(Markup("".join(parts)), legend)  # noqa: S704 - no user text in this chart


def correlation_heatmap(
    labels: Sequence[str], matrix: Sequence[Sequence[float | None]]
) -> Chart | None:
    """An n x n grid of correlations, blue (-1) through white (0) to red (+1)."""
    n = len(labels)
    if n == 0 or len(matrix) != n or any(len(row) != n for row in matrix):
        return None
    short = [name if len(name) <= 20 else name[:19] + "\u2026" for name in labels]
    longest = max(len(name) for name in short)
    cell = max(16.0, min(56.0, 600.0 / n))
    left = min(150.0, 14 + 6.6 * longest)
    top = min(110.0, 14 + 4.8 * longest)
    width, height = left + cell * n + 8, top + cell * n + 8
    show_values = cell >= 34
    parts = [_open_svg(width, height, "Correlation matrix", fluid=False)]
    for i, name in enumerate(short):
        y = top + i * cell + cell / 2 + 4
        x = left + i * cell + cell / 2
        parts.append(
            f'<text x="{left - 8:.1f}" y="{y:.1f}" text-anchor="end">{escape(name)}</text>'
            f'<text x="{x:.1f}" y="{top - 8:.1f}" transform="rotate(-40 {x:.1f} {top - 8:.1f})">'
            f"{escape(name)}</text>"
        )
    for i in range(n):
        for j in range(n):
            value = finite(matrix[i][j])
            x, y = left + j * cell, top + i * cell
            if value is None:
                fill, ink = "#f3f4f6", "#6b7280"
            else:
                fill, t = _diverging(value, 1.0, CORR_POSITIVE, CORR_NEGATIVE)
                ink = "#ffffff" if t > 0.62 else "#1f2937"
            tip = f"{escape(labels[i])} / {escape(labels[j])}: {format_number(value)}"
            text = (
                f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle" '
                f'fill="{ink}">{format_number(value)}</text>'
                if show_values
                else ""
            )
            parts.append(
                f"<g><title>{tip}</title>"
                f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{cell - 2:.1f}" '
                f'height="{cell - 2:.1f}" rx="2" fill="{fill}"/>{text}</g>'
            )
    parts.append("</svg>")
    legend = (
        LegendItem("\u22121 (moves opposite)", "#{:02x}{:02x}{:02x}".format(*CORR_NEGATIVE)),
        LegendItem("+1 (moves together)", "#{:02x}{:02x}{:02x}".format(*CORR_POSITIVE)),
    )
    return Chart(Markup("".join(parts)), legend)  # noqa: S704 - labels escaped above


def month_key(year: object, month: object) -> tuple[int, int] | None:
    """``(year, month)`` when both are sane integers, else None."""
    y, m = finite(year), finite(month)
    if y is None or m is None or y != int(y) or m != int(m) or not 1 <= m <= 12:
        return None
    if not datetime.min.year <= y <= datetime.max.year:
        return None
    return int(y), int(m)
