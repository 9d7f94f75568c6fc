"""Oscillators: RSI (Wilder), rate of change, MACD."""

from __future__ import annotations

from typing import ClassVar

from engine.indicators.averages import EmaCore
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


class RSI(Indicator):
    """Wilder's RSI in [0, 100]; ready after ``period + 1`` candles (``period`` changes).

    The first average gain/loss is the simple mean of the first ``period`` changes;
    then avg = (avg * (period - 1) + change) / period. RSI = 100 * gain / (gain + loss),
    which is 100 when there were only gains and 50 when the price did not move at all.
    """

    __slots__ = ("_gain", "_loss", "_n", "_prev", "_src", "period", "scale")
    name: ClassVar[str] = "rsi"
    doc: ClassVar[str] = "relative strength index, Wilder smoothing"
    units: ClassVar[tuple[str, ...]] = ("scalar",)
    params: ClassVar[tuple[Param, ...]] = (period_param(14), source_param())
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "_gain", "_loss", "_prev", "_n")

    def __init__(self, period: int = 14, source: str = "close") -> None:
        self._check(period=period, source=source)
        super().__init__(period + 1)
        self.period = period
        self._src = source_code(source)
        self.scale = source_scale(self._src)
        self._gain = 0.0  # integer sum of gains during warm-up, average after
        self._loss = 0.0
        self._prev = 0
        self._n = 0

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        s = self._src
        x = c if s == 0 else source_int(s, o, h, l, c, v)
        d = x - self._prev
        self._prev = x
        if self.ready:
            p = self.period
            if d > 0:
                g = (self._gain * (p - 1) + d / self.scale) / p
                lo = self._loss * (p - 1) / p
            else:
                g = self._gain * (p - 1) / p
                lo = (self._loss * (p - 1) - d / self.scale) / p
            self._gain = g
            self._loss = lo
            t = g + lo
            self.value = 100.0 * g / t if t > 0.0 else 50.0
            return
        n = self._n
        self._n = n + 1
        if n == 0:
            return
        if d > 0:
            self._gain += d
        else:
            self._loss -= d
        if n == self.period:
            div = self.period * self.scale
            g = self._gain / div
            lo = self._loss / div
            self._gain = g
            self._loss = lo
            self.ready = True
            t = g + lo
            self.value = 100.0 * g / t if t > 0.0 else 50.0


class ROC(Indicator):
    """Rate of change in percent: 100 * (x - x[period ago]) / x[period ago].

    Ready after ``period + 1`` candles; NaN when the old value is 0 (only possible for
    the volume source).
    """

    __slots__ = ("_buf", "_i", "_n", "_src", "period")
    name: ClassVar[str] = "roc"
    doc: ClassVar[str] = "rate of change, percent over period bars"
    units: ClassVar[tuple[str, ...]] = ("scalar",)
    params: ClassVar[tuple[Param, ...]] = (period_param(10), source_param())
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "_buf", "_i", "_n")

    def __init__(self, period: int = 10, source: str = "close") -> None:
        self._check(period=period, source=source)
        super().__init__(period + 1)
        self.period = period
        self._src = source_code(source)
        self._buf = [0] * period
        self._i = 0
        self._n = 0

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        s = self._src
        x = c if s == 0 else source_int(s, o, h, l, c, v)
        buf = self._buf
        i = self._i
        old = buf[i]
        buf[i] = x
        i += 1
        self._i = 0 if i == self.period else i
        if not self.ready:
            self._n += 1
            if self._n <= self.period:
                return
            self.ready = True
        self.value = 100.0 * ((x - old) / old) if old != 0 else NAN


class MACD(Indicator):
    """MACD: EMA(fast) - EMA(slow), its EMA(signal), and the histogram.

    Both price EMAs are SMA-seeded (see ``EMA``); the signal EMA starts on the first
    MACD value (when the slow EMA is ready) and is seeded with the mean of the first
    ``signal`` MACD values. Ready after ``slow + signal - 1`` candles; all outputs are
    NaN before that. Outputs: macd, signal, hist (= macd - signal).
    """

    __slots__ = ("_fast", "_hist", "_sig", "_signal", "_slow", "_src", "scale")
    name: ClassVar[str] = "macd"
    doc: ClassVar[str] = "moving average convergence/divergence (macd, signal, hist)"
    params: ClassVar[tuple[Param, ...]] = (
        Param("fast", int, 12, lo=1, hi=100_000, doc="fast EMA period"),
        Param("slow", int, 26, lo=2, hi=100_000, doc="slow EMA period, > fast"),
        Param("signal", int, 9, lo=1, hi=100_000, doc="signal EMA period"),
        source_param(),
    )
    outputs: ClassVar[tuple[str, ...]] = ("macd", "signal", "hist")
    units: ClassVar[tuple[str, ...]] = ("source", "source", "source")
    _state: ClassVar[tuple[str, ...]] = (
        "ready",
        "value",
        "_signal",
        "_hist",
        "_fast",
        "_slow",
        "_sig",
    )

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9, source: str = "close"):
        self._check(fast=fast, slow=slow, signal=signal, source=source)
        if fast >= slow:
            raise IndicatorError(
                f"macd: parameter 'fast' ({fast}) must be smaller than 'slow' ({slow})",
                indicator="macd",
                param="fast",
                value=fast,
            )
        super().__init__(slow + signal - 1)
        self._src = source_code(source)
        self.scale = source_scale(self._src)
        self._fast = EmaCore(fast)
        self._slow = EmaCore(slow)
        self._sig = EmaCore(signal)
        self._signal = NAN
        self._hist = NAN

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        s = self._src
        x = (c if s == 0 else source_int(s, o, h, l, c, v)) / self.scale
        fast = self._fast
        slow = self._slow
        fast.push(x)
        slow.push(x)
        if not slow.ready:
            return
        m = fast.value - slow.value
        sig = self._sig
        sig.push(m)
        if sig.ready:
            self.ready = True
            self.value = m
            self._signal = sig.value
            self._hist = m - sig.value

    def get(self, name: str) -> float:
        if name == "macd" or name == "value":
            return self.value
        if name == "signal":
            return self._signal
        if name == "hist":
            return self._hist
        return super().get(name)
