"""Finer candles to a card's execution timeframe, with the engine's own ``Resampler``.

A 1m file can drive a 5m, 15m, 1h or 4h card: every bar is built by
``engine.timeframes.Resampler``, the object that builds a card's higher timeframes,
so a resampled 5m bar is the bar the engine itself would have made (UTC-aligned
``[k * tf, (k + 1) * tf)``, open of the first candle, max high, min low, close of
the last, summed volume). Turnover, which the engine's resampler does not carry,
is the sum over the same bar's candles. Incomplete bars (the data starts or ends
mid-bar, or a hole inside a bar under ``gaps="skip"``) are dropped, never emitted
partial, and counted in ``Resampled.dropped``.

Coarser data than asked for cannot be split: a ``DataError`` says so.
"""

from __future__ import annotations

import msgspec
import numpy as np

from engine.timeframes import Resampler, TimeframeError, tf_ms

from .errors import DataError
from .series import CandleSeries


class Resampled(msgspec.Struct, frozen=True):
    """What ``resample`` did: from which timeframe, bars built and incomplete bars dropped."""

    source_timeframe: str
    timeframe: str
    bars: int
    dropped: int


def resample(series: CandleSeries, timeframe: str) -> tuple[CandleSeries, Resampled]:
    """``series`` aggregated to ``timeframe`` (a no-op when it is already that timeframe)."""
    try:
        target = tf_ms(timeframe)
    except TimeframeError as exc:
        raise DataError(series.source, 0, str(exc)) from None
    label = timeframe.strip()  # the caller's spelling: candles carry the card's label
    have = series.timeframe_ms
    if target == have:
        same = CandleSeries(series.instrument, label, source=series.source, **series.columns())
        return same, Resampled(series.timeframe, series.timeframe, len(series), 0)
    if target < have or target % have:
        why = "coarser than" if target < have else "not a whole multiple of"
        raise DataError(
            series.source,
            0,
            f"the data's {series.timeframe} bars are {why} the {label} bars asked for",
            f"{series.timeframe} candles",
            f"candles of {label} or of a timeframe that divides it, or run the card "
            f"at {series.timeframe} (--timeframe {series.timeframe}) or slower",
        )
    closes: list[int] = []
    bars = Resampler(label)
    update = bars.update
    cols = [
        series.open_ms.tolist(),
        series.close_ms.tolist(),
        series.open.tolist(),
        series.high.tolist(),
        series.low.tolist(),
        series.close.tolist(),
        series.volume.tolist(),
    ]
    out: list[list[int]] = [[], [], [], [], []]
    for o_ms, c_ms, o, h, lo, c, v in zip(*cols):
        if update(o_ms, c_ms, o, h, lo, c, v):
            closes.append(c_ms)
            for col, value in zip(out, (bars.open, bars.high, bars.low, bars.close, bars.volume)):
                col.append(value)
    close_ms = np.asarray(closes, dtype=np.int64)
    open_ms = close_ms - target
    # Turnover: the sum of the candles inside each emitted bar (cumulative sums, exact ints).
    csum = np.concatenate([[0], np.cumsum(series.turnover, dtype=np.int64)])
    lo_i = np.searchsorted(series.open_ms, open_ms, "left")
    hi_i = np.searchsorted(series.close_ms, close_ms, "right")
    turnover = csum[hi_i] - csum[lo_i]
    buckets = np.unique(series.open_ms - series.open_ms % target)
    result = CandleSeries(
        series.instrument,
        label,
        open_ms=open_ms,
        close_ms=close_ms,
        open=np.asarray(out[0], dtype=np.int64),
        high=np.asarray(out[1], dtype=np.int64),
        low=np.asarray(out[2], dtype=np.int64),
        close=np.asarray(out[3], dtype=np.int64),
        volume=np.asarray(out[4], dtype=np.int64),
        turnover=turnover,
        source=series.source,
    )
    report = Resampled(series.timeframe, label, len(result), len(buckets) - len(result))
    return result, report


def resampled_text(done: Resampled) -> str:
    """One line for the user ("" when nothing was resampled)."""
    if done.source_timeframe == done.timeframe:
        return ""
    text = f"resampled {done.source_timeframe} -> {done.timeframe}: {done.bars} bars"
    if done.dropped:
        text += f", {done.dropped} incomplete bar(s) dropped (starting, ending or gapped mid-bar)"
    return text
