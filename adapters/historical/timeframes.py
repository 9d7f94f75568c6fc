"""Timeframe labels ("1m", "5m", "1h", "1d") and their length in milliseconds."""

from __future__ import annotations

from typing import Final

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS
_UNITS: Final = {"s": 1_000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


class TimeframeError(ValueError):
    """A timeframe label that is not understood."""


def timeframe_ms(label: str) -> int:
    """Length of a bar in ms: "5m" -> 300000. Also takes Bybit intervals ("60", "D", "W")."""
    text = label.strip()
    if text.isdigit():  # Bybit interval: minutes
        value = int(text) * MINUTE_MS
    elif text in ("D", "W"):
        value = _UNITS[text.lower()]
    else:
        number, unit = text[:-1], text[-1:].lower()
        if unit not in _UNITS or not number.isdigit():
            raise TimeframeError(f"timeframe {label!r}: expected e.g. 1m, 5m, 15m, 1h, 4h, 1d")
        value = int(number) * _UNITS[unit]
    if value <= 0:
        raise TimeframeError(f"timeframe {label!r} must be longer than zero")
    return value


def timeframe_label(ms: int) -> str:
    """Canonical label for a bar length: 60000 -> "1m", 3600000 -> "1h", 86400000 -> "1d"."""
    if ms <= 0:
        raise TimeframeError(f"bar length {ms} ms must be > 0")
    for unit, size in (("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise TimeframeError(f"bar length {ms} ms is not a whole number of seconds")
