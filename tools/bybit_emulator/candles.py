"""The candle file the emulator replays, read by ``adapters.historical.load_candles`` -- the
same loader, checks and unit conversion a backtest uses -- so both see identical bars.

Any format that loader reads works (CSV ``timestamp,open,high,low,close,volume`` with bar-start
stamps as in /work/shared/data/crypto/bybit_linear_*.csv, Bybit kline JSON, Parquet). The bar
length must be one of Bybit's kline intervals.
"""

from __future__ import annotations

from pathlib import Path

from adapters.historical import DataError, load_candles
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
