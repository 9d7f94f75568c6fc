"""report.html's chart: candles, every trade marked, resting stops and targets, the card's
features, equity and drawdown, on one zoomable time axis with a range slider.

Long runs are drawn with at most ``MAX_BARS`` candles: each drawn bar then groups ``k``
consecutive candles exactly (first open, highest high, lowest low, last close) and the
page says so. Markers are never thinned: every entry, add, reduce and exit is drawn at
its own time and price. Stop and take-profit levels are drawn per drawn bar (the level
resting during that bar; the latest if it moved). Features are computed from the log's
candles with the card's own indicators (price-unit ones on the price pane, each other
feature in a pane of its own), for runs of up to ``MAX_FEATURE_CANDLES`` candles; a
longer run's page says they were not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from engine.expressions import PRICE
from engine.instrument import MONEY_SCALE, Instrument
from engine.timeframes import tf_ms
from projections.account import AccountView
from replay.report_plotly import Fig, axis_ref, stacked_layout, template, typed
from replay.report_trades import TradeRow

MAX_BARS: Final = 4000
MAX_FEATURE_CANDLES: Final = 300_000
FEED_ROWS: Final = 8192  # candles fed to the features per conversion to Python ints

#: (trace name, marker symbol, colour) of each kind of marker.
MARKERS: Final = {
    "long entry": ("triangle-up", "green"),
    "short entry": ("triangle-down", "red"),
    "add": ("circle", "royalblue"),
    "reduce": ("diamond", "orange"),
    "exit": ("x", "black"),
}


class Features:
    """The card's feature lines over the candles, sampled at the drawn bars."""

    def __init__(self, lines: dict[str, tuple[str, np.ndarray]], note: str = "") -> None:
        self.lines = lines  # name -> (unit, values at each drawn bar; NaN until warm)
        self.note = note


def _dt(ms: np.ndarray | list[int]) -> list[str]:
    """Times in ms as the text ``datetime.isoformat()`` gives for them in UTC, which is
    what plotly writes for a datetime: the same page, without building and encoding a
    datetime object per point (a million-candle run has 60k markers)."""
    stamps = np.asarray(ms, dtype=np.int64)
    seconds = np.datetime_as_string(stamps.astype("datetime64[ms]"), unit="s").tolist()
    millis = (stamps % 1000).tolist()
    return [
        f"{s}.{f:03d}000+00:00" if f else f"{s}+00:00" for s, f in zip(seconds, millis, strict=True)
    ]


def bar_groups(n: int, max_bars: int = MAX_BARS) -> tuple[np.ndarray, int]:
    """Start indices of the drawn bars and the candles per bar (1 when ``n <= max_bars``)."""
    k = max(1, math.ceil(n / max_bars)) if n else 1
    return np.arange(0, n, k, dtype=np.int64), k


def compute_features(
    view: AccountView,
    plan_factory: Callable[[], object] | None,
    ends: np.ndarray,
) -> Features:
    """Feed the log's candles to a fresh plan's features; sample each line at ``ends``."""
    n = len(view.curve_ts.array())
    if plan_factory is None or n == 0:
        return Features({}, "")
    if n > MAX_FEATURE_CANDLES:
        return Features({}, f"features not drawn: {n:,} candles is over {MAX_FEATURE_CANDLES:,}")
    plan = plan_factory()
    feed = getattr(plan, "feed_features", None)
    lines_of = getattr(plan, "feature_lines", None)
    if feed is None or lines_of is None:
        return Features({}, "")
    lines = lines_of()
    if not lines:
        return Features({}, "")
    width = tf_ms(view.timeframe)
    cols = [
        view.curve_ts.array(),
        view.curve_open.array(),
        view.curve_high.array(),
        view.curve_low.array(),
        view.curve_close.array(),
        view.curve_volume.array(),
    ]
    values = np.full((len(ends), len(lines)), np.nan)
    getters = [g for _, _, g in lines]
    ends_at = [*ends.tolist(), -1]  # the drawn bars' last candles, then a stop
    row = i = 0
    for first in range(0, n, FEED_ROWS):  # a column as Python ints for FEED_ROWS at a time
        part = slice(first, first + FEED_ROWS)
        for t, o, h, lo, c, v in zip(*(col[part].tolist() for col in cols), strict=True):
            feed(t, t - width, t, o, h, lo, c, v)
            if i == ends_at[row]:
                values[row] = [float(g()) for g in getters]
                row += 1
            i += 1
    return Features({name: (unit, values[:, j]) for j, (name, unit, _) in enumerate(lines)})


# Trace and layout keys are written in the order plotly writes them (its properties sorted,
# then the type and axes), so the page's text is the one plotly made for the same chart.
def figure(
    view: AccountView,
    instr: Instrument,
    rows: list[TradeRow],
    plan: Callable[[], object] | None,
) -> tuple[Fig, str]:
    """The chart (a plotly figure dict, ``replay.report_plotly``) and the note that says how
    it was drawn (``plan`` builds a fresh compiled card whose features are drawn; None: none)."""
    ts = view.curve_ts.array()
    n = len(ts)
    starts, k = bar_groups(n)
    ends = np.minimum(starts + k, n) - 1
    features = compute_features(view, plan, ends)
    tick = float(instr.tick)
    width = tf_ms(view.timeframe) if view.timeframe else 0
    if n:
        o = view.curve_open.array()[starts] * tick
        h = np.maximum.reduceat(view.curve_high.array(), starts) * tick
        lo = np.minimum.reduceat(view.curve_low.array(), starts) * tick
        c = view.curve_close.array()[ends] * tick
    else:
        o = h = lo = c = np.zeros(0)
    x = _dt(ts[starts] - width)
    scalar = [name for name, (unit, _) in features.lines.items() if unit != PRICE]
    n_rows = 3 + len(scalar)
    heights = [0.45] + [0.12] * len(scalar) + [0.25, 0.15]
    titles = ["Price, trades, stops and targets", *scalar, "Equity", "Drawdown %"]
    data: list[dict[str, Any]] = []

    def add(trace: dict[str, Any], row: int) -> None:
        trace["xaxis"], trace["yaxis"] = axis_ref(row)
        data.append(trace)

    add(
        {"close": typed(c), "high": typed(h), "low": typed(lo), "name": "candles",
         "open": typed(o), "x": x, "type": "candlestick"},
        1,
    )  # fmt: skip
    for trace in _markers(view, instr, rows):
        add(trace, 1)
    for trace in _levels(view, instr, ts, starts, ends, x):
        add(trace, 1)
    for name, (unit, values) in features.lines.items():
        y = values * tick if unit == PRICE else values
        r = 1 if unit == PRICE else 2 + scalar.index(name)
        add(
            {"line": {"width": 1}, "name": name, "x": _dt(ts[ends] - width), "y": typed(y),
             "type": "scatter"},
            r,
        )  # fmt: skip
    equity = view.curve_equity.array()
    dd = _drawdown_pct(equity)
    # Equity and drawdown at each drawn bar's end, and the deepest drawdown inside it.
    eq_x = _dt(ts[ends])
    eq_y = typed(equity[ends] / MONEY_SCALE) if n else []
    add({"name": "equity", "x": eq_x, "y": eq_y, "type": "scatter"}, n_rows - 1)
    dd_bar = np.minimum.reduceat(dd, starts) if n else dd
    add(
        {"fill": "tozeroy", "line": {"width": 1}, "name": "drawdown %", "x": eq_x,
         "y": typed(dd_bar), "type": "scatter"},
        n_rows,
    )  # fmt: skip
    layout = {"template": template(), **stacked_layout(heights, titles, 0.03)}
    layout["xaxis"]["rangeslider"] = {"visible": False}
    layout[f"xaxis{n_rows}"]["rangeslider"] = {"visible": True, "thickness": 0.04}
    layout.update(height=700 + 160 * len(scalar) + 200, showlegend=True)
    note = (
        f"{n:,} candles drawn as {len(starts):,} bars of {k:,} candles each (open, high, low "
        "and close of each group exact); every trade marker is drawn."
        if k > 1
        else f"{n:,} candles, each drawn; every trade marker is drawn."
    )
    if features.note:
        note += " " + features.note + "."
    return {"data": data, "layout": layout}, note


def _drawdown_pct(equity: np.ndarray) -> np.ndarray:
    """(equity - running peak) / peak * 100 at every point, 0 where the peak is not
    positive: computed in place, so a million points cost two float arrays, not six."""
    dd = equity.astype(np.float64)
    peaks = np.maximum.accumulate(dd) if len(dd) else dd.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        dd -= peaks
        dd /= peaks
        dd *= 100.0
    dd[~(peaks > 0)] = 0.0
    return dd


def _markers(view: AccountView, instr: Instrument, rows: list[TradeRow]) -> list[dict[str, Any]]:
    """One marker trace per kind in ``MARKERS``: every entry, exit, add and reduce."""
    points: dict[str, tuple[list[int], list[float], list[str]]] = {m: ([], [], []) for m in MARKERS}
    for r in rows:
        xs, ys, texts = points[f"{r.side} entry"]
        xs.append(r.entry_ts)
        ys.append(instr.ticks_to_float(r.entry_price))
        texts.append(f"#{r.n} {r.side} by {r.opened_by or '?'}")
        if not r.open_at_end:
            xs, ys, texts = points["exit"]
            xs.append(r.exit_ts)
            ys.append(instr.ticks_to_float(r.exit_price))
            texts.append(f"#{r.n} closed by {r.close_reason}")
    for m in view.marks:
        if m.kind in ("add", "reduce"):
            xs, ys, texts = points[m.kind]
            xs.append(m.ts)
            ys.append(instr.ticks_to_float(m.price))
            texts.append(f"{m.kind} {instr.lots_to_qty(m.lots)}")
    traces = []
    for name, (symbol, color) in MARKERS.items():
        xs, ys, texts = points[name]
        traces.append(
            {"marker": {"color": color, "size": 9, "symbol": symbol}, "mode": "markers",
             "name": name, "text": texts, "x": _dt(xs), "y": ys, "type": "scatter"}
        )  # fmt: skip
    return traces


def _levels(
    view: AccountView,
    instr: Instrument,
    ts: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    x: list[str],
) -> list[dict[str, Any]]:
    """Stops and targets as the level resting during each drawn bar (NaN: none)."""
    if not len(ts):
        return []
    width = tf_ms(view.timeframe)
    bar_open = ts[starts] - width
    bar_close = ts[ends]
    last = int(ts[-1])
    traces = []
    for kind, name, color in (("stop", "stop", "crimson"), ("take_profit", "target", "teal")):
        y = np.full(len(starts), np.nan)
        segs = [s for s in view.story.resting if s.kind == kind]
        if segs:
            seg_start = np.array([s.start_ts for s in segs], np.int64)
            seg_end = np.array([s.end_ts or last for s in segs], np.int64)
            price = np.array([s.price for s in segs], np.float64) * float(instr.tick)
            a = np.searchsorted(bar_close, seg_start, side="left")
            b = np.maximum(np.searchsorted(bar_open, seg_end, side="left"), a)
            lengths = b - a
            # Every bar each segment covers; a later segment overwrites an earlier one.
            idx = np.repeat(a - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
            y[idx] = np.repeat(price, lengths)
        traces.append(
            {"connectgaps": False,
             "line": {"color": color, "dash": "dot", "shape": "hv", "width": 1},
             "mode": "lines", "name": name, "x": x, "y": typed(y), "type": "scatter"}
        )  # fmt: skip
    return traces
