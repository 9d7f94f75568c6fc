"""Every problem in a candle file, not only the first: what ``replay data check`` prints.

``load_candles`` stops at the first problem (a run cannot use a half-checked file);
``survey`` runs the same checks (the masks in ``checks`` and ``units``) over the
whole file and returns one ``DataError`` per kind of problem, located at its first
row, with how many rows have it and where the next few are. A file whose rows
cannot be read at all (a bad line, a missing column) has only that problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from engine.instrument import Instrument
from engine.timeframes import timeframe_label

from .checks import (
    find_gaps,
    gap_error_text,
    infer_timeframe_ms,
    off_grid_mask,
    ohlc_masks,
    order_masks,
)
from .errors import DataError
from .loader import read_raw
from .raw import RawCandles
from .units import bad_amount_mask, bad_price_mask, off_tick_mask

#: Rows named per problem after the first.
SHOWN: Final = 5
_PRICES: Final = ("open", "high", "low", "close")


def survey(
    path: str | Path,
    inst: Instrument,
    *,
    timeframe_ms: int | None = None,
    fmt: str | None = None,
    round_prices: bool = False,
    gaps: str = "fail",
    drop_last_open: bool = False,
) -> list[DataError]:
    """All problems in the file at ``path`` (empty: none of the row checks fails).

    The options mean what they mean to ``load_candles``: gaps are a problem only
    under ``gaps="fail"``, off-grid prices only without ``round_prices``.
    """
    try:
        raw = read_raw(path, fmt)
    except DataError as exc:
        return [exc]
    if isinstance(raw, pa.Table):
        return []  # an exact Parquet: integers written by replay
    if drop_last_open and len(raw):
        raw = raw.take(slice(0, len(raw) - 1))
    found: list[DataError] = []

    def report(mask: np.ndarray, shift: int, what: str, expected: str, show: str) -> None:
        rows = np.flatnonzero(mask) + shift
        if len(rows) == 0:
            return
        i = int(rows[0])
        more = ", ".join(_where(raw, int(j)) for j in rows[1 : 1 + SHOWN])
        extra = f" (also {more}{', ...' if len(rows) > 1 + SHOWN else ''})" if more else ""
        shown = _value(raw, i, show) + extra
        found.append(raw.error(i, f"{what}: {len(rows)} row(s)", shown, expected))

    ordered = True
    if len(raw) >= 2:
        back, dup = order_masks(raw)
        report(back, 1, "timestamps are not sorted", "increasing times, oldest first", "stamp")
        report(dup, 1, "duplicate timestamp", "one candle per time (--dedupe)", "stamp")
        ordered = not (back.any() or dup.any())
    ticks: dict[str, np.ndarray] = {}
    for name in _PRICES:
        values = getattr(raw, name)
        bad = bad_price_mask(values)
        report(bad, 0, f"{name} price is not a positive number", "> 0", name)
        if not round_prices:
            off = off_tick_mask(values, inst) & ~bad
            report(
                off, 0, f"{name} price is not on the tick grid", f"a multiple of {inst.tick}", name
            )
        ticks[name] = np.rint(np.where(bad, 0.0, values) / float(inst.tick)).astype(np.int64)
    bad_high, bad_low = ohlc_masks(ticks["open"], ticks["high"], ticks["low"], ticks["close"])
    expected = "low <= open, close <= high"
    report(bad_high, 0, "OHLC inconsistent: high is below max(open, close)", expected, "high")
    report(
        bad_low & ~bad_high, 0, "OHLC inconsistent: low is above min(open, close)", expected, "low"
    )
    report(bad_amount_mask(raw.volume), 0, "volume is negative or not a number", ">= 0", "volume")
    if raw.turnover is not None:
        report(
            bad_amount_mask(raw.turnover),
            0,
            "turnover is negative or not a number",
            ">= 0",
            "turnover",
        )
    if ordered:
        _gaps(raw, timeframe_ms, found, report_gaps=gaps == "fail")
    return found


def _gaps(raw: RawCandles, tf_ms: int | None, found: list[DataError], *, report_gaps: bool) -> None:
    """Gaps and off-grid bars (only on sorted, unique times: otherwise spacing means nothing)."""
    if len(raw) < 2:
        return
    step = np.diff(raw.stamp)
    if tf_ms is None:
        tf_ms = infer_timeframe_ms(raw)
    irregular = off_grid_mask(raw, tf_ms)
    if irregular.any():
        rows = np.flatnonzero(irregular) + 1
        i = int(rows[0])
        found.append(
            raw.error(
                i,
                f"bar is off the {timeframe_label(tf_ms)} grid: {len(rows)} row(s)",
                f"{int(step[i - 1])} ms after the previous bar",
                f"a multiple of {tf_ms} ms",
            )
        )
        return
    where, missing = find_gaps(raw, tf_ms)
    if len(where) and report_gaps:
        i, text, expected = gap_error_text(raw, where, missing, tf_ms)
        found.append(raw.error(i, "gap in the data", text, expected))


def _where(raw: RawCandles, i: int) -> str:
    row = raw.row(i)
    return f"line {row + raw.header_lines}" if raw.header_lines is not None else f"{raw.item} {row}"


def _value(raw: RawCandles, i: int, name: str) -> str:
    if name == "stamp":
        return f"time {int(raw.stamp[i])} ms"
    return f"{name} {float(getattr(raw, name)[i])!r}"
