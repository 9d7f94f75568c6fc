"""``load_candles``: any supported file to a checked ``CandleSeries``.

Stamps: ``stamps="start"`` (the default) reads each timestamp as the bar's open
time, as most exports do, including every file in ../shared/data and Bybit's own
``startTime``; ``stamps="end"`` reads it as the instant the bar closed. Either way
the resulting ``CandleClosed.ts`` is the close time (open + timeframe). End stamps written as
the bar's last millisecond (Binance's ``closeTime``, 12:59:59.999) are read as the
next whole second.

``drop_last_open=True`` drops the file's last row before any check: files saved
from a live API (the Bybit files in ../shared/data) end with a candle that was
still open when they were downloaded, and its close and volume are partial.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from engine.events import InstrumentSpec
from engine.instrument import Instrument
from engine.timeframes import TimeframeError, timeframe_label, timeframe_ms

from .bybit_json import read_bybit_json
from .checks import (
    GAP_POLICIES,
    check_ohlc,
    check_order,
    exact_duplicates,
    fill_positions,
    find_gaps,
    gap_error_text,
    infer_timeframe_ms,
)
from .csv import read_csv
from .errors import DataError
from .parquet import exact_columns, exact_meta, is_exact, raw_from_table, read_parquet_table
from .raw import I64, RawCandles
from .series import CandleSeries
from .units import prices_to_ticks, turnover_to_money, volume_to_lots

FORMATS: Final = ("csv", "bybit-json", "parquet")
_BY_SUFFIX: Final = {
    ".csv": "csv", ".txt": "csv", ".tsv": "csv", ".json": "bybit-json",
    ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip


def detect_format(path: str | Path) -> str:
    """The reader for a path, from its suffix (csv, bybit-json, parquet)."""
    suffix = Path(path).suffix.lower()
    if suffix not in _BY_SUFFIX:
        raise DataError(
            str(path),
            0,
            f"unknown file type {suffix or '(none)'!r}",
            "",
            "a .csv, .json (Bybit kline) or .parquet file, or pass fmt=",
        )
    return _BY_SUFFIX[suffix]


def _check_regular(path: str) -> None:
    """Refuse a device, FIFO or socket: its data may never end (/dev/zero, a pipe)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # a missing file: the reader says so
    if not stat.S_ISREG(mode):
        raise DataError(path, 0, "not a regular file", "", "a candle file on disk")


def load_candles(
    path: str | Path,
    instrument: Instrument | InstrumentSpec,
    *,
    timeframe: str | None = None,
    stamps: str = "start",
    gaps: str = "fail",
    fmt: str | None = None,
    drop_last_open: bool = False,
    round_prices: bool = False,
    dedupe: bool = False,
    notes: list[str] | None = None,
) -> CandleSeries:
    """Read, check and convert a candle file; raises ``DataError`` naming file and row.

    ``timeframe`` ("1m", "5m", "1h", ...) is inferred from the median spacing when
    None. ``gaps`` is "fail", "fill" or "skip" (see ``checks``). ``round_prices``
    rounds off-grid prices to the nearest tick instead of failing (for example a
    Binance file with 0.01 prices read with Bybit's 0.1 tick). ``dedupe`` drops rows
    that repeat the previous row exactly (same time and values). ``notes``, when
    given, receives one line per thing the loader found or did (the columns it
    matched, bars filled, duplicates dropped), for the user.
    """
    inst = instrument if isinstance(instrument, Instrument) else Instrument(instrument)
    name = str(path)
    if stamps not in ("start", "end"):
        raise ValueError(f"stamps={stamps!r}: expected 'start' or 'end'")
    if gaps not in GAP_POLICIES:
        raise ValueError(f"gaps={gaps!r}: expected one of {', '.join(GAP_POLICIES)}")
    raw = read_raw(path, fmt)
    if isinstance(raw, pa.Table):
        return _exact_parquet(name, raw, inst, timeframe)
    return build_series(
        raw,
        inst,
        timeframe=timeframe,
        stamps=stamps,
        gaps=gaps,
        drop_last_open=drop_last_open,
        round_prices=round_prices,
        dedupe=dedupe,
        notes=notes,
    )


def read_raw(path: str | Path, fmt: str | None = None) -> RawCandles | pa.Table:
    """A file's candles before any check: raw columns, or the table of an exact Parquet."""
    _check_regular(str(path))
    kind = fmt or detect_format(path)
    if kind == "parquet":
        table = read_parquet_table(path)
        return table if is_exact(table) else raw_from_table(str(path), table)
    if kind == "csv":
        return read_csv(path)
    if kind == "bybit-json":
        return read_bybit_json(path)
    raise ValueError(f"fmt={fmt!r}: expected one of {', '.join(FORMATS)}")


def build_series(
    raw: RawCandles,
    inst: Instrument,
    *,
    timeframe: str | None = None,
    stamps: str = "start",
    gaps: str = "fail",
    drop_last_open: bool = False,
    round_prices: bool = False,
    dedupe: bool = False,
    notes: list[str] | None = None,
) -> CandleSeries:
    """Checks and unit conversion shared by every reader (``load_candles`` documents them)."""
    said = notes if notes is not None else []
    if raw.found:
        said.append(raw.found)
    if drop_last_open and len(raw):
        raw = raw.take(slice(0, len(raw) - 1))
    if len(raw) == 0:
        raise DataError(raw.path, 0, "no candles in the file", "0 rows", "at least one candle")
    if dedupe:
        keep = exact_duplicates(raw)
        if not keep.all():
            said.append(f"dropped {int((~keep).sum())} exact duplicate row(s) (--dedupe)")
            raw = raw.take(np.flatnonzero(keep))
    check_order(raw)
    if stamps == "end" and np.all((raw.stamp + 1) % 1000 == 0):
        # Close times written as the bar's last millisecond (Binance's closeTime, ...:59.999).
        raw.stamp = raw.stamp + 1
    if timeframe is None:
        tf_ms = infer_timeframe_ms(raw)
        label = timeframe_label(tf_ms)
    else:
        try:
            tf_ms = timeframe_ms(timeframe)
        except TimeframeError as exc:
            raise DataError(raw.path, 0, str(exc)) from None
        label = timeframe_label(tf_ms)
    o = prices_to_ticks(raw, "open", raw.open, inst, round_prices=round_prices)
    h = prices_to_ticks(raw, "high", raw.high, inst, round_prices=round_prices)
    lo = prices_to_ticks(raw, "low", raw.low, inst, round_prices=round_prices)
    c = prices_to_ticks(raw, "close", raw.close, inst, round_prices=round_prices)
    check_ohlc(raw, o, h, lo, c)
    vol = volume_to_lots(raw, raw.volume, inst)
    turn = turnover_to_money(raw, raw.turnover)
    stamp = raw.stamp
    where, missing = find_gaps(raw, tf_ms)
    if len(where) and gaps == "fail":
        i, found, expected = gap_error_text(raw, where, missing, tf_ms)
        raise raw.error(i, "gap in the data", found, expected)
    if len(where) and gaps == "fill":
        stamp, (o, h, lo, c, vol, turn) = _fill(
            stamp, where, missing, tf_ms, o, h, lo, c, vol, turn
        )
        said.append(
            f"filled {int(missing.sum())} missing {label} bar(s) in {len(where)} gap(s) "
            "with flat bars at the previous close (--gaps fill)"
        )
    elif len(where) and gaps == "skip":
        said.append(f"kept {len(where)} gap(s), {int(missing.sum())} missing bar(s) (--gaps skip)")
    open_ms = stamp if stamps == "start" else stamp - tf_ms
    return CandleSeries(
        inst,
        label,
        open_ms=open_ms,
        close_ms=open_ms + tf_ms,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=vol,
        turnover=turn,
        source=raw.path,
    )


def _fill(
    stamp: I64, where: I64, missing: I64, tf_ms: int, *cols: I64
) -> tuple[I64, tuple[I64, ...]]:
    """Insert flat bars (previous close, zero volume and turnover) into every hole."""
    n = len(stamp)
    total = n + int(missing.sum())
    pos = fill_positions(n, where, missing)
    real = np.zeros(total, dtype=bool)
    real[pos] = True
    origin = np.zeros(total, dtype=np.int64)
    origin[pos] = np.arange(n, dtype=np.int64)
    last_real = np.maximum.accumulate(np.where(real, np.arange(total), 0))
    src = origin[last_real]  # the original row each output row copies from
    o, h, lo, c, vol, turn = cols
    out_close = c[src]
    out = [np.where(real, col[src], out_close) for col in (o, h, lo)]
    out += [out_close, np.where(real, vol[src], 0), np.where(real, turn[src], 0)]
    new_stamp = stamp[0] + np.arange(total, dtype=np.int64) * tf_ms
    return new_stamp, tuple(out)


def _exact_parquet(
    path: str, table: pa.Table, inst: Instrument, timeframe: str | None
) -> CandleSeries:
    meta = exact_meta(table)
    grid = (meta.get("tick_size"), meta.get("qty_step"))
    if grid != (inst.spec.tick_size, inst.spec.qty_step):
        raise DataError(
            path,
            0,
            "the file was written for another price/qty grid",
            f"tick_size, qty_step = {grid}",
            f"{(inst.spec.tick_size, inst.spec.qty_step)}",
        )
    label = meta.get("timeframe", "")
    if timeframe is not None and timeframe_ms(timeframe) != timeframe_ms(label):
        raise DataError(path, 0, "timeframe differs from the file's", label, timeframe)
    cols = exact_columns(table)
    return CandleSeries(inst, label, source=path, **cols)
