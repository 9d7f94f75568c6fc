"""``CandleSeries``: candles held as numpy int64 columns, streamed out as ``CandleClosed``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
import numpy.typing as npt

from engine.events import CandleClosed
from engine.instrument import Instrument
from engine.timeframes import timeframe_ms

I64 = npt.NDArray[np.int64]
COLUMNS: Final = ("open_ms", "close_ms", "open", "high", "low", "close", "volume", "turnover")
# events() converts this many rows of each column to Python ints at a time: big enough
# to amortise .tolist(), small enough that 1M candles never sit in memory as ints.
_CHUNK: Final = 32_768


class CandleSeries:
    """Columnar candles of one symbol and timeframe, sorted by time, in engine units.

    Prices are ticks, volume lots, turnover money (see ``engine.instrument``);
    ``open_ms``/``close_ms`` bound each bar, and ``close_ms`` is the ``ts`` of its
    ``CandleClosed``. ``source`` says where the candles came from (a path, or
    ``"synthetic(seed=7)"``) so a runner can tell the user plainly.
    """

    __slots__ = (*COLUMNS, "instrument", "source", "symbol", "timeframe", "timeframe_ms")

    def __init__(
        self,
        instrument: Instrument,
        timeframe: str,
        *,
        open_ms: I64,
        close_ms: I64,
        open: I64,
        high: I64,
        low: I64,
        close: I64,
        volume: I64,
        turnover: I64,
        source: str = "",
    ) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.timeframe = timeframe
        self.timeframe_ms = timeframe_ms(timeframe)
        self.source = source
        cols = (open_ms, close_ms, open, high, low, close, volume, turnover)
        n = len(open_ms)
        for name, col in zip(COLUMNS, cols):
            if len(col) != n:
                raise ValueError(f"column {name} has {len(col)} rows, open_ms has {n}")
        self.open_ms, self.close_ms = _i64(open_ms), _i64(close_ms)
        self.open, self.high, self.low, self.close = _i64(open), _i64(high), _i64(low), _i64(close)
        self.volume, self.turnover = _i64(volume), _i64(turnover)

    def __len__(self) -> int:
        return len(self.open_ms)

    def __repr__(self) -> str:
        span = f"{self.open_ms[0]}..{self.close_ms[-1]}" if len(self) else "empty"
        return f"CandleSeries({self.symbol} {self.timeframe}, {len(self)} candles, {span})"

    @property
    def start_ms(self) -> int:
        """Open time of the first candle (0 when empty)."""
        return int(self.open_ms[0]) if len(self) else 0

    @property
    def end_ms(self) -> int:
        """Close time of the last candle (0 when empty)."""
        return int(self.close_ms[-1]) if len(self) else 0

    def columns(self) -> dict[str, I64]:
        """The eight columns by name (views, not copies)."""
        return {name: getattr(self, name) for name in COLUMNS}

    def take(self, index: slice | I64) -> CandleSeries:
        """A new series of the rows selected by a slice (views) or an index array (copies)."""
        cols = {name: col[index] for name, col in self.columns().items()}
        return CandleSeries(self.instrument, self.timeframe, source=self.source, **cols)

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> CandleSeries:
        """Candles that open at or after ``start_ms`` and close at or before ``end_ms``.

        Either bound may be None (open-ended). The result shares memory with ``self``.
        """
        lo = 0 if start_ms is None else int(np.searchsorted(self.open_ms, start_ms, "left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.close_ms, end_ms, "right"))
        return self.take(slice(lo, max(lo, hi)))

    def events(self, *, backfill: bool = False) -> Iterator[CandleClosed]:
        """Yield one ``CandleClosed`` per candle, in time order, built lazily.

        Columns are turned into Python ints a chunk at a time, so streaming a
        million candles costs one small object per candle and bounded memory.
        """
        symbol, tf, make = self.symbol, self.timeframe, CandleClosed
        cols = self.columns()
        for lo in range(0, len(self), _CHUNK):
            part = [cols[name][lo : lo + _CHUNK].tolist() for name in COLUMNS]
            for o_ms, c_ms, o, h, lw, c, v, t in zip(*part):
                # Positional arguments: CandleClosed's field order is the file format.
                yield make(c_ms, symbol, tf, o_ms, c_ms, o, h, lw, c, v, t, backfill)

    def equals(self, other: CandleSeries) -> bool:
        """Same symbol, timeframe and every column equal (``source`` is ignored)."""
        if (self.symbol, self.timeframe, len(self)) != (other.symbol, other.timeframe, len(other)):
            return False
        return all(
            np.array_equal(a, b) for a, b in zip(self.columns().values(), other.columns().values())
        )


def _i64(col: npt.ArrayLike) -> I64:
    return np.ascontiguousarray(col, dtype=np.int64)
