"""Integer channels: rolling highest/lowest and the Donchian channel.

A monotonic deque in fixed-size preallocated rings gives the window extreme in
amortised O(1) per candle. Values stay integers (``ivalue``, ``iupper``...), so a tie
between a price and a channel is a real tie.
"""

from __future__ import annotations

from typing import ClassVar

from engine.indicators.base import (
    NAN,
    SRC_HIGH,
    SRC_LOW,
    Indicator,
    Param,
    Stateful,
    period_param,
    source_code,
    source_int,
    source_param,
    source_scale,
)


class MonoDeque(Stateful):
    """Extreme of the last ``window`` pushed integers, with the *earliest* index on ties.

    ``push(t, x)`` adds value x at bar index t (t increasing by 1 per push). Afterwards
    ``front_val``/``front_idx`` are the maximum (``is_max``) or minimum of the window
    [t - window + 1, t] and the first bar index where it occurs.
    """

    __slots__ = ("_head", "_idx", "_size", "_val", "front_idx", "front_val", "is_max", "window")
    _state: ClassVar[tuple[str, ...]] = (
        "_idx",
        "_val",
        "_head",
        "_size",
        "front_idx",
        "front_val",
    )

    def __init__(self, window: int, is_max: bool) -> None:
        self.window = window
        self.is_max = is_max
        self._idx = [0] * window
        self._val = [0] * window
        self._head = 0
        self._size = 0
        self.front_idx = -1
        self.front_val = 0

    def push(self, t: int, x: int) -> None:
        """Add x at bar index t and drop what fell out of the window."""
        cap = self.window
        idx = self._idx
        val = self._val
        head = self._head
        size = self._size
        # Bars come one index at a time, so at most the front entry expires.
        if size and idx[head] <= t - cap:
            head += 1
            if head == cap:
                head = 0
            size -= 1
        back = head + size - 1
        if back >= cap:
            back -= cap
        elif back < 0:
            back = cap - 1
        # Drop strictly dominated entries from the back; equal values stay (earliest wins).
        if self.is_max:
            while size and val[back] < x:
                size -= 1
                back = back - 1 if back else cap - 1
        else:
            while size and val[back] > x:
                size -= 1
                back = back - 1 if back else cap - 1
        back += 1
        if back == cap:
            back = 0
        idx[back] = t
        val[back] = x
        self._head = head
        self._size = size + 1
        self.front_idx = idx[head]
        self.front_val = val[head]


class _Extreme(Indicator):
    """Rolling max or min of a source; ``ivalue`` is the exact scaled integer."""

    __slots__ = ("_dq", "_src", "_t", "ivalue", "period", "scale")
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "ivalue", "_t", "_dq")
    _is_max: ClassVar[bool] = True

    def __init__(self, period: int, source: str) -> None:
        self._check(period=period, source=source)
        super().__init__(period)
        self.period = period
        self._src = source_code(source)
        self.scale = source_scale(self._src)
        self._dq = MonoDeque(period, self._is_max)
        self._t = 0
        self.ivalue = 0

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        s = self._src
        if s == SRC_HIGH:
            x = h
        elif s == SRC_LOW:
            x = l
        else:
            x = source_int(s, o, h, l, c, v)
        t = self._t
        dq = self._dq
        dq.push(t, x)
        self._t = t + 1
        iv = dq.front_val
        self.ivalue = iv
        if self.ready:
            self.value = iv / self.scale
        elif t + 1 == self.period:
            self.ready = True
            self.value = iv / self.scale


class Highest(_Extreme):
    """Highest source value of the last ``period`` candles (default: high); ready after
    ``period`` candles."""

    __slots__ = ()
    name: ClassVar[str] = "highest"
    doc: ClassVar[str] = "highest value over period bars (exact integer)"
    params: ClassVar[tuple[Param, ...]] = (period_param(20), source_param("high"))
    _is_max: ClassVar[bool] = True

    def __init__(self, period: int = 20, source: str = "high") -> None:
        super().__init__(period, source)


class Lowest(_Extreme):
    """Lowest source value of the last ``period`` candles (default: low); ready after
    ``period`` candles."""

    __slots__ = ()
    name: ClassVar[str] = "lowest"
    doc: ClassVar[str] = "lowest value over period bars (exact integer)"
    params: ClassVar[tuple[Param, ...]] = (period_param(20), source_param("low"))
    _is_max: ClassVar[bool] = False

    def __init__(self, period: int = 20, source: str = "low") -> None:
        super().__init__(period, source)


class Donchian(Indicator):
    """Donchian channel: highest high and lowest low of the last ``period`` candles,
    including the current one. Outputs: upper, lower, middle = (upper + lower) / 2;
    ``iupper``/``ilower`` are the exact ticks. Ready after ``period`` candles."""

    __slots__ = ("_hi", "_lo", "_lower", "_middle", "_t", "ilower", "iupper", "period")
    name: ClassVar[str] = "donchian"
    doc: ClassVar[str] = "Donchian channel (upper, lower, middle)"
    params: ClassVar[tuple[Param, ...]] = (period_param(20),)
    outputs: ClassVar[tuple[str, ...]] = ("upper", "lower", "middle")
    units: ClassVar[tuple[str, ...]] = ("price", "price", "price")
    _state: ClassVar[tuple[str, ...]] = (
        "ready",
        "value",
        "iupper",
        "ilower",
        "_lower",
        "_middle",
        "_t",
        "_hi",
        "_lo",
    )

    def __init__(self, period: int = 20) -> None:
        self._check(period=period)
        super().__init__(period)
        self.period = period
        self._hi = MonoDeque(period, True)
        self._lo = MonoDeque(period, False)
        self._t = 0
        self.iupper = 0
        self.ilower = 0
        self._lower = NAN
        self._middle = NAN

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        t = self._t
        hi = self._hi
        lo = self._lo
        hi.push(t, h)
        lo.push(t, l)
        self._t = t + 1
        if not self.ready:
            if t + 1 < self.period:
                return
            self.ready = True
        u = hi.front_val
        d = lo.front_val
        self.iupper = u
        self.ilower = d
        self.value = float(u)
        self._lower = float(d)
        self._middle = (u + d) / 2

    def get(self, name: str) -> float:
        if name == "upper" or name == "value":
            return self.value
        if name == "lower":
            return self._lower
        if name == "middle":
            return self._middle
        return super().get(name)
