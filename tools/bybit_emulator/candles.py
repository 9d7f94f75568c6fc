"""Read the candle file the emulator replays: CSV ``timestamp,open,high,low,close,volume``.

Stamps are bar *starts* ("2025-04-03 17:05:00+00:00", ISO 8601, or integer ms/seconds), as
in /work/shared/data/crypto/bybit_linear_*.csv. The timeframe is the smallest gap between
consecutive bars. Prices are put on the instrument's tick grid (half-even) and volumes on its
lot grid (floor), so the matching engine sees exactly what a backtest of the same file sees.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN
from itertools import pairwise
from pathlib import Path

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
TIMEFRAMES: dict[int, str] = {
    60_000: "1m",
    180_000: "3m",
    300_000: "5m",
    900_000: "15m",
    1_800_000: "30m",
    3_600_000: "1h",
    7_200_000: "2h",
    14_400_000: "4h",
    21_600_000: "6h",
    43_200_000: "12h",
    86_400_000: "1d",
}


class CandleFileError(ValueError):
    """A candle file the emulator cannot replay (names the file and the line)."""


def parse_stamp(raw: str) -> int:
    """A bar-start stamp to Unix ms: integer ms, integer seconds, or ISO 8601 (UTC if naive)."""
    text = raw.strip()
    if text.isdigit():
        value = int(text)
        return value if value >= 10**11 else value * 1000
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def load_candle_csv(path: Path, instrument: Instrument) -> list[CandleClosed]:
    """All bars of ``path``, oldest first, as ``CandleClosed`` events on ``instrument``'s grid."""
    rows: list[tuple[int, int, int, int, int, int]] = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise CandleFileError(f"{path}: empty file")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                t = parse_stamp(row[0])
                o, h, lo, c = (instrument.price_to_ticks(v, ROUND_HALF_EVEN) for v in row[1:5])
                vol = instrument.qty_to_lots(row[5], ROUND_FLOOR)
            except (ValueError, IndexError) as exc:
                raise CandleFileError(f"{path}:{lineno}: {exc}") from None
            rows.append((t, o, h, lo, c, vol))
    if len(rows) < 2:
        raise CandleFileError(f"{path}: need at least two bars to infer the timeframe")
    rows.sort(key=lambda r: r[0])
    step = min(b[0] - a[0] for a, b in pairwise(rows))
    if step not in TIMEFRAMES:
        raise CandleFileError(f"{path}: bar length {step} ms is not a Bybit interval")
    tf = TIMEFRAMES[step]
    return [
        CandleClosed(
            ts=t + step,
            symbol=instrument.symbol,
            timeframe=tf,
            open_ms=t,
            close_ms=t + step,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=vol,
        )
        for t, o, h, lo, c, vol in rows
    ]


def interval_of(candle: CandleClosed) -> str:
    """Bybit's interval string ("5", "60", "D") for a candle's bar length."""
    return INTERVALS[candle.close_ms - candle.open_ms]
