"""The candle file the emulator replays, read by ``adapters.historical.load_candles`` -- the
same loader, checks and unit conversion a backtest uses -- so both see identical bars.

Any format that loader reads works (CSV ``timestamp,open,high,low,close,volume`` with bar-start
stamps as in /work/shared/data/crypto/bybit_linear_*.csv, Bybit kline JSON, Parquet). The bar
length must be one of Bybit's kline intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adapters.historical import DataError, load_candles, timeframe_label
from engine.events import CandleClosed
from engine.instrument import Instrument

#: Bybit kline interval strings by bar length in ms.
INTERVALS: dict[int, str] = {
    60_000: "1",
    180_000: "3",
    300_000: "5",
    900_000: "15",
    1_800_000: "30",
    3_600_000: "60",
    7_200_000: "120",
    14_400_000: "240",
    21_600_000: "360",
    43_200_000: "720",
    86_400_000: "D",
}


#: Bar length in ms by Bybit interval string.
INTERVAL_MS: dict[str, int] = {v: k for k, v in INTERVALS.items()}


class CandleFileError(ValueError):
    """A candle file the emulator cannot replay (the message names the file)."""


def load_candle_file(path: Path, instrument: Instrument, gaps: str = "fail") -> list[CandleClosed]:
    """All bars of ``path``, oldest first, as ``CandleClosed`` events on ``instrument``'s grid.

    ``gaps`` is passed to the loader ("fail", "fill" or "skip").
    """
    try:
        series = load_candles(path, instrument, gaps=gaps)
    except (DataError, OSError, ValueError) as exc:
        raise CandleFileError(f"{path}: {exc}") from None
    if series.timeframe_ms not in INTERVALS:
        raise CandleFileError(f"{path}: bar length {series.timeframe} is not a Bybit interval")
    return list(series.events())


def interval_of(candle: CandleClosed) -> str:
    """Bybit's interval string ("5", "60", "D") for a candle's bar length."""
    return INTERVALS[candle.close_ms - candle.open_ms]


def aggregate(bars: Sequence[CandleClosed], interval_ms: int) -> list[CandleClosed]:
    """``bars`` (oldest first) rolled up into ``interval_ms`` bars aligned to multiples of it
    since the epoch (UTC midnight for "D"). The newest bar may be incomplete, as Bybit's newest
    kline may still be open: its close is the last close and its ``close_ms`` the full bar's.
    """
    out: list[CandleClosed] = []
    for c in bars:
        start = c.open_ms - c.open_ms % interval_ms
        if out and out[-1].open_ms == start:
            prev = out[-1]
            out[-1] = CandleClosed(
                ts=prev.ts,
                symbol=prev.symbol,
                timeframe=prev.timeframe,
                open_ms=start,
                close_ms=prev.close_ms,
                open=prev.open,
                high=max(prev.high, c.high),
                low=min(prev.low, c.low),
                close=c.close,
                volume=prev.volume + c.volume,
                turnover=prev.turnover + c.turnover,
            )
        else:
            out.append(
                CandleClosed(
                    ts=start + interval_ms,
                    symbol=c.symbol,
                    timeframe=timeframe_label(interval_ms),
                    open_ms=start,
                    close_ms=start + interval_ms,
                    open=c.open,
                    high=c.high,
                    low=c.low,
                    close=c.close,
                    volume=c.volume,
                    turnover=c.turnover,
                )
            )
    return out
