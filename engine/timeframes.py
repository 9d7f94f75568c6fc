"""Timeframe names and the resampler that builds slower bars from execution candles.

A slower bar covers ``[k * tf_ms, (k + 1) * tf_ms)`` (UTC-aligned, like Bybit's klines).
It is built from the execution candles inside it and becomes visible on the execution
candle whose ``close_ms`` equals the bar's close (``close_ms % tf_ms == 0``); its values
then stay constant (forward fill) until the next slow bar closes. No lookahead: nothing
of a slow bar is visible before that candle.

A slow bar is *complete* only if its execution candles are contiguous and cover it from
its first to its last instant. An incomplete bar (the first bar when the data starts
mid-bar, or a bar with a gap) is dropped, never emitted: a partial bar would differ from
the venue's bar of the same name and move indicators by an amount no one can check.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS
WEEK_MS: Final = 7 * DAY_MS
_TF_RE: Final = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_UNIT_MS: Final = {"s": 1_000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}
#: A card's timeframe: minutes and slower (seconds are for candle files only).
_CARD_RE: Final = re.compile(r"^[1-9][0-9]*[mhdw]$")
_EXPECTED: Final = "expected e.g. 1m, 5m, 15m, 1h, 4h, 1d"


class TimeframeError(ValueError):
    """A timeframe label that is not understood (see ``tf_ms``)."""

    def __init__(self, value: str, why: str = _EXPECTED) -> None:
        super().__init__(f"bad timeframe {value!r}: {why}")
        self.value = value


def tf_ms(timeframe: str) -> int:
    """Milliseconds in one bar: "5m" -> 300_000; ``<n>`` + s, m, h, d or w.

    Also takes Bybit's kline intervals ("1", "60" minutes; "D", "W"), so every
    timeframe label in replay goes through this one parser.
    """
    text = timeframe.strip()
    if text.isdigit():  # Bybit interval: minutes
        text += "m"
    elif text in ("D", "W"):
        text = "1" + text.lower()
    else:
        text = text[:-1] + text[-1:].lower()  # "1H" as "1h" (never months)
    m = _TF_RE.match(text)
    if m is None:
        raise TimeframeError(timeframe)
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


#: The name the historical adapters use for ``tf_ms``.
timeframe_ms = tf_ms


def timeframe_label(ms: int) -> str:
    """Canonical label for a bar length: 60000 -> "1m", 3600000 -> "1h", 86400000 -> "1d"."""
    if ms <= 0:
        raise TimeframeError(f"{ms} ms", "a bar must be longer than zero")
    for unit, size in (("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise TimeframeError(f"{ms} ms", "not a whole number of seconds")


def is_timeframe(timeframe: str) -> bool:
    """True for a timeframe a card may name: ``<n>m``, ``<n>h``, ``<n>d`` or ``<n>w``."""
    return _CARD_RE.match(timeframe) is not None


class Resampler:
    """Aggregates execution candles into one slower timeframe, calling ``on_bar`` per close.

    ``update`` returns True on the candle that closed (and emitted) a slow bar. The last
    emitted bar's OHLCV stays readable as attributes until the next one (forward fill).
    """

    __slots__ = (
        "timeframe",
        "tf_ms",
        "on_bar",
        "bucket",
        "valid",
        "last_close",
        "o",
        "h",
        "l",
        "c",
        "v",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "bar_close_ms",
        "bars",
    )

    def __init__(self, timeframe: str, on_bar: Any = None) -> None:
        self.timeframe = timeframe
        self.tf_ms = tf_ms(timeframe)
        self.on_bar = on_bar  # callable(ts, o, h, l, c, v) or None
        self.bucket = -1  # start ms of the bar being built
        self.valid = False  # contiguous from the bar's first instant so far
        self.last_close = -1  # close_ms of the previous execution candle
        self.o = self.h = self.l = self.c = self.v = 0
        # The last closed bar (forward-filled values), NaN-free ints; 0 before the first.
        self.open = self.high = self.low = self.close = self.volume = 0
        self.bar_close_ms = 0
        self.bars = 0  # slow bars emitted so far

    def update(self, open_ms: int, close_ms: int, o: int, h: int, l: int, c: int, v: int) -> bool:  # noqa: E741
        """Fold one execution candle; True if it closed a complete slow bar."""
        t = self.tf_ms
        bucket = open_ms - open_ms % t
        if bucket != self.bucket:
            self.bucket = bucket
            self.valid = open_ms == bucket
            self.o, self.h, self.l, self.c, self.v = o, h, l, c, v
        else:
            if open_ms != self.last_close:
                self.valid = False  # a gap inside the bar
            if h > self.h:
                self.h = h
            if l < self.l:
                self.l = l
            self.c = c
            self.v += v
        self.last_close = close_ms
        if close_ms % t != 0 or close_ms - bucket != t:
            return False
        self.bucket = -1  # the next candle starts a new bar
        if not self.valid:
            return False
        self.open, self.high, self.low, self.close, self.volume = (
            self.o,
            self.h,
            self.l,
            self.c,
            self.v,
        )
        self.bar_close_ms = close_ms
        self.bars += 1
        if self.on_bar is not None:
            self.on_bar(close_ms, self.o, self.h, self.l, self.c, self.v)
        return True

    #: The state, in snapshot order (the callback is wiring, not state).
    STATE: ClassVar[tuple[str, ...]] = (
        "bucket",
        "valid",
        "last_close",
        "o",
        "h",
        "l",
        "c",
        "v",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "bar_close_ms",
        "bars",
    )

    def snapshot(self) -> list[Any]:
        """State as builtins."""
        return [getattr(self, name) for name in self.STATE]

    def restore(self, state: list[Any]) -> None:
        """Inverse of ``snapshot``."""
        for name, value in zip(self.STATE, state, strict=True):
            setattr(self, name, value)
