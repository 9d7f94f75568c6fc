"""Moving averages: SMA and WMA kept exact on integer ticks, EMA in floats.

SMA and WMA hold running *integer* sums of scaled source values, so two of them
can be compared without float noise (see ``cross.sma_compare``); their ``value``
is one correctly rounded division. EMA is a float recursion in one fixed order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from engine.indicators.base import (
    NAN,
    Indicator,
    Param,
    Stateful,
    period_param,
    source_code,
    source_int,
    source_param,
    source_scale,
)


class SMA(Indicator):
    """Simple moving average over ``period`` candles; ready after ``period`` candles.

    ``total`` is the exact integer sum of the last ``period`` scaled source values and
    ``divisor`` = period * source scale, so ``value == total / divisor`` in ticks.
    """

    __slots__ = ("_buf", "_i", "_n", "_src", "divisor", "period", "scale", "total")
    name: ClassVar[str] = "sma"
    doc: ClassVar[str] = "simple moving average (exact integer running sum)"
    params: ClassVar[tuple[Param, ...]] = (period_param(20), source_param())
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "total", "_buf", "_i", "_n")

    def __init__(self, period: int = 20, source: str = "close") -> None:
        self._check(period=period, source=source)
        super().__init__(period)
        self.period = period
        self._src = source_code(source)
        self.scale = source_scale(self._src)
        self.divisor = period * self.scale
        self.total = 0
        self._buf = [0] * period
        self._i = 0
        self._n = 0

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        s = self._src
        x = c if s == 0 else source_int(s, o, h, l, c, v)
        buf = self._buf
        i = self._i
        total = self.total + x - buf[i]
        self.total = total
        buf[i] = x
        i += 1
        self._i = 0 if i == self.period else i
        if self.ready:
            self.value = total / self.divisor
        else:
            self._n += 1
            if self._n == self.period:
                self.ready = True
                self.value = total / self.divisor

    # The bulk form (backtests: ``replay.fastpath``). ``tests/test_fast_backtest.py`` holds
    # it equal to ``update`` bar for bar on real and random data: that is its contract.
    @staticmethod
    def totals(source: npt.NDArray[np.int64], period: int) -> npt.NDArray[np.int64]:
        """``total`` after each bar of a series of scaled source values, all at once."""
        out = np.cumsum(source)
        out[period:] -= out[:-period].copy()
        return out

    def seek(self, window: Sequence[int], bars: int) -> None:
        """Put the state ``update`` leaves after ``bars`` bars, the last ones ``window``
        (oldest first, ``min(bars, period)`` of them)."""
        p = self.period
        n = min(bars, p)
        if len(window) != n:
            raise ValueError(f"sma: window of {len(window)} values, expected {n}")
        buf = self._buf
        r = bars % p
        if n == p:  # bar k sits at k % p
            buf[r:] = window[: p - r]
            buf[:r] = window[p - r :]
        else:
            buf[:] = [*window, *([0] * (p - n))]
        self._i = r
        self._n = n
        self.total = total = sum(window)
        self.ready = n == p
        self.value = total / self.divisor if self.ready else NAN


class WMA(Indicator):
    """Linearly weighted moving average (newest weight ``period``, oldest 1), exact sums.

    Keeps the integer sum ``total`` and weighted sum ``weighted``; updating both is
    O(1): weighted' = weighted - total + period * x. Ready after ``period`` candles.
    """

    __slots__ = ("_buf", "_i", "_n", "_src", "divisor", "period", "scale", "total", "weighted")
    name: ClassVar[str] = "wma"
    doc: ClassVar[str] = "linearly weighted moving average (exact integer sums)"
    params: ClassVar[tuple[Param, ...]] = (period_param(20), source_param())
    _state: ClassVar[tuple[str, ...]] = (
        "ready",
        "value",
        "total",
        "weighted",
        "_buf",
        "_i",
        "_n",
    )

    def __init__(self, period: int = 20, source: str = "close") -> None:
        self._check(period=period, source=source)
        super().__init__(period)
        self.period = period
        self._src = source_code(source)
        self.scale = source_scale(self._src)
        self.divisor = self.scale * period * (period + 1) // 2
        self.total = 0
        self.weighted = 0
        self._buf = [0] * period
        self._i = 0
        self._n = 0

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        s = self._src
        x = c if s == 0 else source_int(s, o, h, l, c, v)
        buf = self._buf
        i = self._i
        if self.ready:
            self.weighted += self.period * x - self.total
            self.total += x - buf[i]
            self.value = self.weighted / self.divisor
        else:
            n = self._n + 1
            self._n = n
            self.weighted += n * x
            self.total += x
            if n == self.period:
                self.ready = True
                self.value = self.weighted / self.divisor
        buf[i] = x
        i += 1
        self._i = 0 if i == self.period else i


class EmaCore(Stateful):
    """Float EMA of pushed values, seeded with their simple mean over the first ``period``.

    alpha = 2 / (period + 1); after the seed, e = e + alpha * (x - e). ``value`` is
    NaN until ``period`` values have been pushed.
    """

    __slots__ = ("_n", "_seed", "alpha", "period", "ready", "value")
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "_seed", "_n")

    def __init__(self, period: int) -> None:
        self.period = period
        self.alpha = 2.0 / (period + 1)
        self.ready = False
        self.value = NAN
        self._seed = 0.0
        self._n = 0

    def push(self, x: float) -> None:
        """Add one value."""
        if self.ready:
            e = self.value
            self.value = e + self.alpha * (x - e)
            return
        self._seed += x
        self._n += 1
        if self._n == self.period:
            self.ready = True
            self.value = self._seed / self.period


class EMA(Indicator):
    """Exponential moving average, alpha = 2/(period+1), seeded with the SMA of the first
    ``period`` candles; ready after ``period`` candles."""

    __slots__ = ("_core", "_src", "period", "scale")
    name: ClassVar[str] = "ema"
    doc: ClassVar[str] = "exponential moving average, SMA-seeded"
    params: ClassVar[tuple[Param, ...]] = (period_param(20), source_param())
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "_core")

    def __init__(self, period: int = 20, source: str = "close") -> None:
        self._check(period=period, source=source)
        super().__init__(period)
        self.period = period
        self._src = source_code(source)
        self.scale = source_scale(self._src)
        self._core = EmaCore(period)

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        s = self._src
        x = c if s == 0 else source_int(s, o, h, l, c, v)
        core = self._core
        if self.ready:
            e = core.value
            e = e + core.alpha * (x / self.scale - e)
            core.value = e
            self.value = e
            return
        core.push(x / self.scale)
        if core.ready:
            self.ready = True
            self.value = core.value
