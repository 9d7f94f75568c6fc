"""Checks on a candle table: time order, duplicates, OHLC consistency and gaps.

Each check raises a ``DataError`` that names the file and the first offending row.
Gap policies: ``"fail"`` (the default: a hole in the data is a surprise the user
should see), ``"fill"`` (insert flat candles at the previous close with zero
volume, as an exchange does for a minute without trades), ``"skip"`` (accept the
holes; bars stay at their real times). Bars that are not on the timeframe's grid
relative to each other (spacing not a whole number of bars) fail under every policy.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from engine.timeframes import timeframe_label

from .raw import I64, RawCandles

GAP_POLICIES: Final = ("fail", "fill", "skip")


def order_masks(raw: RawCandles) -> tuple[np.ndarray, np.ndarray]:
    """(back, dup): row ``i + 1`` is earlier than / at the same time as row ``i``."""
    step = np.diff(raw.stamp)
    return step < 0, step == 0


def check_order(raw: RawCandles) -> None:
    """Timestamps strictly increasing: reports the first unsorted row or duplicate."""
    if len(raw) < 2:
        return
    back, dup = order_masks(raw)
    if back.any() and (not dup.any() or np.argmax(back) < np.argmax(dup)):
        i = int(np.argmax(back)) + 1
        raise raw.error(
            i,
            "timestamps are not sorted",
            f"{int(raw.stamp[i])} after {int(raw.stamp[i - 1])} (row {raw.row(i - 1)})",
            "increasing times, oldest first",
        )
    if dup.any():
        i = int(np.argmax(dup)) + 1
        raise raw.error(
            i,
            "duplicate timestamp",
            f"{int(raw.stamp[i])} also at row {raw.row(i - 1)}",
            "one candle per time (--dedupe drops rows that repeat another exactly)",
        )


def exact_duplicates(raw: RawCandles) -> np.ndarray:
    """A keep-mask: False on each row equal in time and every value to the row before it."""
    keep = np.ones(len(raw), dtype=bool)
    if len(raw) < 2:
        return keep
    same = raw.stamp[1:] == raw.stamp[:-1]
    cols = [raw.open, raw.high, raw.low, raw.close, raw.volume]
    if raw.turnover is not None:
        cols.append(raw.turnover)
    for col in cols:
        same &= col[1:] == col[:-1]
    keep[1:] = ~same
    return keep


def ohlc_masks(o: I64, h: I64, lo: I64, c: I64) -> tuple[np.ndarray, np.ndarray]:
    """(bad_high, bad_low): high below max(open, close) / low above min(open, close)."""
    return h < np.maximum(o, c), lo > np.minimum(o, c)


def check_ohlc(raw: RawCandles, o: I64, h: I64, lo: I64, c: I64) -> None:
    """high >= max(open, close) and low <= min(open, close) on every row."""
    bad_high, bad_low = ohlc_masks(o, h, lo, c)
    bad = bad_high | bad_low
    if bad.any():
        i = int(np.argmax(bad))
        if bad_high[i]:
            what, found = "high is below max(open, close)", f"high {raw.high[i]!r}"
        else:
            what, found = "low is above min(open, close)", f"low {raw.low[i]!r}"
        found += f", open {raw.open[i]!r}, close {raw.close[i]!r}"
        raise raw.error(i, f"OHLC inconsistent: {what}", found, "low <= open, close <= high")


def infer_timeframe_ms(raw: RawCandles) -> int:
    """The bar length as the median spacing of the (sorted) timestamps."""
    if len(raw) < 2:
        raise raw.error(
            0,
            "cannot infer the timeframe from fewer than two candles",
            f"{len(raw)} candle(s)",
            "pass timeframe=...",
        )
    return int(np.median(np.diff(raw.stamp)))


def off_grid_mask(raw: RawCandles, tf_ms: int) -> np.ndarray:
    """Row ``i + 1`` is not a whole number of bars after row ``i``."""
    return (np.diff(raw.stamp) % tf_ms) != 0


def find_gaps(raw: RawCandles, tf_ms: int) -> tuple[I64, I64]:
    """Indices ``i`` where a hole precedes row ``i``, and the missing bar count of each.

    Raises on spacing that is not a whole number of bars (misaligned or too close).
    """
    step = np.diff(raw.stamp)
    irregular = off_grid_mask(raw, tf_ms)
    if irregular.any():
        i = int(np.argmax(irregular)) + 1
        raise raw.error(
            i,
            f"bar is off the {timeframe_label(tf_ms)} grid",
            f"{int(step[i - 1])} ms after the previous bar",
            f"a multiple of {tf_ms} ms",
        )
    where = np.flatnonzero(step > tf_ms) + 1
    return where.astype(np.int64), (step[where - 1] // tf_ms - 1).astype(np.int64)


def gap_error_text(raw: RawCandles, where: I64, missing: I64, tf_ms: int) -> tuple[int, str, str]:
    """(index, found, expected) describing the first gap, for a DataError."""
    i = int(where[0])
    total = int(missing.sum())
    found = (
        f"{int(missing[0])} missing {timeframe_label(tf_ms)} bar(s) between "
        f"{_iso(int(raw.stamp[i - 1]))} (row {raw.row(i - 1)}) and {_iso(int(raw.stamp[i]))}; "
        f"{len(where)} gap(s), {total} missing bar(s) in the file"
    )
    return i, found, 'no gaps, or gaps="fill" / gaps="skip" (--gaps fill|skip)'


def fill_positions(n: int, where: I64, missing: I64) -> I64:
    """Each original row's position after inserting ``missing[k]`` rows before ``where[k]``."""
    shift = np.zeros(n, dtype=np.int64)
    np.add.at(shift, where, missing)
    return np.arange(n, dtype=np.int64) + np.cumsum(shift)


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
