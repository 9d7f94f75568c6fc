"""Swing (pivot) high/low detector without lookahead.

Bar p is a swing high when its high is strictly above the ``left`` bars before it
and at least as high as the ``right`` bars after it (so in a flat top the first bar
is the pivot); swing lows mirror this. A pivot can only be known ``right`` bars
later, and that is when it is reported: nothing here ever looks at a future candle.
"""

from __future__ import annotations

from typing import ClassVar

from engine.indicators.base import NAN, Indicator, Param
from engine.indicators.channels import MonoDeque


class Swing(Indicator):
    """Last confirmed swing high and swing low (ticks).

    Outputs: high, low (NaN until the first one is confirmed), high_ago, low_ago
    (bars from the pivot bar to the current bar, always >= ``right``). ``value`` is
    high. Ready once both a swing high and a swing low have been confirmed (at least
    ``left + right + 1`` candles; ``warmup`` is that lower bound).
    """

    __slots__ = (
        "_hi",
        "_high",
        "_hi_bar",
        "_lo",
        "_lo_bar",
        "_low",
        "_t",
        "left",
        "right",
    )
    name: ClassVar[str] = "swing"
    doc: ClassVar[str] = "last confirmed swing high/low (pivot with left/right bars)"
    params: ClassVar[tuple[Param, ...]] = (
        Param("left", int, 2, lo=1, hi=10_000, doc="bars before the pivot that must be lower"),
        Param("right", int, 2, lo=0, hi=10_000, doc="bars after the pivot before it is known"),
    )
    outputs: ClassVar[tuple[str, ...]] = ("high", "low", "high_ago", "low_ago")
    units: ClassVar[tuple[str, ...]] = ("price", "price", "bars", "bars")
    _state: ClassVar[tuple[str, ...]] = (
        "ready",
        "value",
        "_high",
        "_low",
        "_hi_bar",
        "_lo_bar",
        "_t",
        "_hi",
        "_lo",
    )

    def __init__(self, left: int = 2, right: int = 2) -> None:
        self._check(left=left, right=right)
        super().__init__(left + right + 1)
        self.left = left
        self.right = right
        window = left + right + 1
        self._hi = MonoDeque(window, True)
        self._lo = MonoDeque(window, False)
        self._high = NAN
        self._low = NAN
        self._hi_bar = -1
        self._lo_bar = -1
        self._t = 0

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        t = self._t
        self._t = t + 1
        hi = self._hi
        lo = self._lo
        hi.push(t, h)
        lo.push(t, l)
        p = t - self.right  # the candidate pivot: the centre of the full window
        if p < self.left:
            return
        # The earliest maximum of [p - left, p + right] is at p exactly when the left
        # bars are strictly lower and the right bars not higher.
        if hi.front_idx == p:
            self._high = float(hi.front_val)
            self._hi_bar = p
        if lo.front_idx == p:
            self._low = float(lo.front_val)
            self._lo_bar = p
        if not self.ready and self._hi_bar >= 0 and self._lo_bar >= 0:
            self.ready = True
        if self.ready:
            self.value = self._high

    def get(self, name: str) -> float:
        if name == "value":
            return self.value
        if name == "high":
            return self._high
        if name == "low":
            return self._low
        if name == "high_ago":
            return float(self._t - 1 - self._hi_bar) if self._hi_bar >= 0 else NAN
        if name == "low_ago":
            return float(self._t - 1 - self._lo_bar) if self._lo_bar >= 0 else NAN
        return super().get(name)
