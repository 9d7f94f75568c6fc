"""Session VWAP: volume-weighted average price that restarts at each UTC day."""

from __future__ import annotations

from typing import ClassVar, Final

from engine.indicators.base import (
    Indicator,
    Param,
    source_code,
    source_int,
    source_param,
    source_scale,
)

DAY_MS: Final = 86_400_000


def session_day(ts: int) -> int:
    """The UTC day (days since the epoch) a candle closing at ``ts`` belongs to.

    ``ts`` is the close time, the first instant *after* the bar, so the bar
    23:55-00:00 (ts = midnight) belongs to the day that ends at that midnight.
    """
    return (ts - 1) // DAY_MS


class VWAP(Indicator):
    """Session VWAP = sum(price * volume) / sum(volume) since the start of the candle's
    UTC day (see ``session_day``), with exact integer sums; price defaults to hlc3.

    While the session has traded no volume yet, the value is the candle's own price.
    Ready after the first candle.
    """

    __slots__ = ("_day", "_pv", "_src", "_vol", "scale")
    name: ClassVar[str] = "vwap"
    doc: ClassVar[str] = "volume-weighted average price, reset at each UTC day"
    params: ClassVar[tuple[Param, ...]] = (source_param("hlc3"),)
    _state: ClassVar[tuple[str, ...]] = ("ready", "value", "_day", "_pv", "_vol")

    def __init__(self, source: str = "hlc3") -> None:
        self._check(source=source)
        super().__init__(1)
        self._src = source_code(source)
        self.scale = source_scale(self._src)
        self._day = -(2**62)
        self._pv = 0
        self._vol = 0

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        x = source_int(self._src, o, h, l, c, v)
        day = (ts - 1) // DAY_MS
        if day != self._day:
            self._day = day
            self._pv = 0
            self._vol = 0
        self._pv += x * v
        vol = self._vol + v
        self._vol = vol
        self.value = self._pv / (vol * self.scale) if vol else x / self.scale
        self.ready = True
