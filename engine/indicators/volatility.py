"""Volatility: ATR (Wilder), rolling standard deviation and Bollinger bands.

StDev and Bollinger keep exact integer sums of x and x**2 over the window, so the
variance is one correctly rounded division of integers (no catastrophic
cancellation, no drift), then one ``math.sqrt``.
"""

from __future__ import annotations

import math
from typing import ClassVar

from engine.indicators.base import (
    NAN,
    Indicator,
    IndicatorError,
    Param,
    period_param,
    source_code,
    source_int,
    source_param,
    source_scale,
)


class ATR(Indicator):
    """Wilder's average true range in ticks; ready after ``period`` candles.

    TR = max(h - l, |h - prev close|, |l - prev close|), and h - l on the very first
    candle. The first ATR is the simple mean of the first ``period`` TRs, then
    atr = (atr * (period - 1) + tr) / period.
    """

    __slots__ = ("_n", "_prev", "_sum", "period")
    name: ClassVar[str] = "atr"
    doc: ClassVar[str] = "average true range, Wilder smoothing"
    units: ClassVar[tuple[str, ...]] = ("price",)
    params: ClassVar[tuple[Param, ...]] = (period_param(14),)
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "_sum", "_prev", "_n")

    def __init__(self, period: int = 14) -> None:
        self._check(period=period)
        super().__init__(period)
        self.period = period
        self._sum = 0
        self._prev = -1  # no previous close yet
        self._n = 0

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        pc = self._prev
        tr = h - l
        if pc >= 0:
            if h - pc > tr:
                tr = h - pc
            if pc - l > tr:
                tr = pc - l
        self._prev = c
        if self.ready:
            p = self.period
            self.value = (self.value * (p - 1) + tr) / p
            return
        self._sum += tr
        self._n += 1
        if self._n == self.period:
            self.ready = True
            self.value = self._sum / self.period


class _Moments(Indicator):
    """Shared window of scaled integer values with exact sums of x and x**2."""

    __slots__ = ("_buf", "_i", "_n", "_src", "period", "scale", "sum1", "sum2")
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "sum1", "sum2", "_buf", "_i", "_n")

    def _init_window(self, period: int, source: str) -> None:
        self.period = period
        self._src = source_code(source)
        self.scale = source_scale(self._src)
        self.sum1 = 0
        self.sum2 = 0
        self._buf = [0] * period
        self._i = 0
        self._n = 0

    def _push(self, o: int, h: int, l: int, c: int, v: int) -> bool:  # noqa: E741
        """Add one candle's source value; True once the window is full."""
        s = self._src
        x = c if s == 0 else source_int(s, o, h, l, c, v)
        buf = self._buf
        i = self._i
        old = buf[i]
        self.sum1 += x - old
        self.sum2 += x * x - old * old
        buf[i] = x
        i += 1
        self._i = 0 if i == self.period else i
        if self.ready:
            return True
        self._n += 1
        return self._n == self.period


class StDev(_Moments):
    """Rolling standard deviation in source units (ticks), ``ddof`` 0 (population) or 1.

    Ready after ``period`` candles; needs ``period > ddof``.
    """

    __slots__ = ("_den", "ddof")
    name: ClassVar[str] = "stdev"
    doc: ClassVar[str] = "rolling standard deviation (exact integer sums)"
    params: ClassVar[tuple[Param, ...]] = (
        period_param(20),
        source_param(),
        Param("ddof", int, 0, lo=0, hi=1, doc="0: population, 1: sample"),
    )

    def __init__(self, period: int = 20, source: str = "close", ddof: int = 0) -> None:
        self._check(period=period, source=source, ddof=ddof)
        if period <= ddof:
            raise IndicatorError(
                f"stdev: parameter 'period' ({period}) must exceed 'ddof' ({ddof})",
                indicator="stdev",
                param="period",
                value=period,
            )
        super().__init__(period)
        self._init_window(period, source)
        self.ddof = ddof
        self._den = period * (period - ddof) * self.scale * self.scale

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        if self._push(o, h, l, c, v):
            s1 = self.sum1
            self.value = math.sqrt((self.period * self.sum2 - s1 * s1) / self._den)
            self.ready = True


class Bollinger(_Moments):
    """Bollinger bands: SMA middle +- ``mult`` population standard deviations.

    Outputs: middle, upper, lower, width = (upper - lower) / middle (NaN if middle is
    0). ``value`` is middle. Ready after ``period`` candles.
    """

    __slots__ = ("_den", "_lower", "_upper", "_width", "mult")
    name: ClassVar[str] = "bollinger"
    doc: ClassVar[str] = "Bollinger bands (middle, upper, lower, width)"
    params: ClassVar[tuple[Param, ...]] = (
        period_param(20),
        Param("mult", float, 2.0, lo=0.0, hi=100.0, doc="band width in standard deviations"),
        source_param(),
    )
    outputs: ClassVar[tuple[str, ...]] = ("middle", "upper", "lower", "width")
    units: ClassVar[tuple[str, ...]] = ("source", "source", "source", "scalar")
    _state: ClassVar[tuple[str, ...]] = (*_Moments._state, "_upper", "_lower", "_width")

    def __init__(self, period: int = 20, mult: float = 2.0, source: str = "close") -> None:
        self._check(period=period, mult=mult, source=source)
        super().__init__(period)
        self._init_window(period, source)
        self.mult = float(mult)
        self._den = period * period * self.scale * self.scale
        self._upper = NAN
        self._lower = NAN
        self._width = NAN

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        if self._push(o, h, l, c, v):
            s1 = self.sum1
            sd = math.sqrt((self.period * self.sum2 - s1 * s1) / self._den)
            mid = s1 / (self.period * self.scale)
            up = mid + self.mult * sd
            lo = mid - self.mult * sd
            self.value = mid
            self._upper = up
            self._lower = lo
            self._width = (up - lo) / mid if mid != 0.0 else NAN
            self.ready = True

    def get(self, name: str) -> float:
        if name == "middle" or name == "value":
            return self.value
        if name == "upper":
            return self._upper
        if name == "lower":
            return self._lower
        if name == "width":
            return self._width
        return super().get(name)
