"""What the indicator reference says beyond parameters and outputs, per indicator name:
when it is ready, whether the current bar is in it, and how it is seeded compared with
TA-Lib. ``registry`` puts these on each ``IndicatorSpec`` (a name without notes fails at
import), so ``replay indicators`` and the table in ideacards/README.md, both generated
from the registry, say the same thing.

Every indicator is updated with each *closed* bar, so the current bar is always in its
value; the column says what that means for the window (and where it bites).
"""

from __future__ import annotations

from typing import Final

import msgspec


class Notes(msgspec.Struct, frozen=True):
    ready_after: str  # candles until ``ready`` (in terms of the parameters)
    current_bar: str  # how the current (just closed) bar enters the value
    seeding: str  # the first value, and how it compares with TA-Lib


_IN: Final = "yes: the window ends at the current bar"

NOTES: Final[dict[str, Notes]] = {
    "sma": Notes("period", _IN, "none (a plain mean); equals TA-Lib SMA"),
    "ema": Notes(
        "period",
        _IN,
        "first value = SMA of the first period values, then alpha = 2/(period+1);"
        " equals TA-Lib EMA (its default seeding)",
    ),
    "wma": Notes("period", _IN, "none (weights 1..period, newest heaviest); equals TA-Lib WMA"),
    "rsi": Notes(
        "period + 1",
        "yes: the change from the previous close to the current one",
        "Wilder: the first average gain/loss is the mean of the first period changes,"
        " then avg = (avg*(period-1) + x)/period; equals TA-Lib RSI",
    ),
    "atr": Notes(
        "period",
        "yes: the current bar's true range",
        "Wilder, first value = mean of the first period true ranges, the very first TR"
        " being high - low (no previous close yet). TA-Lib ATR skips that first bar and"
        " seeds with the TRs of bars 2..period+1, so its first value comes one bar later;"
        " the difference then shrinks by (period-1)/period per bar",
    ),
    "bollinger": Notes(
        "period",
        _IN,
        "none: SMA middle +- mult population standard deviations (ddof 0), as TA-Lib"
        " BBANDS; width = (upper - lower)/middle",
    ),
    "macd": Notes(
        "slow + signal - 1",
        _IN,
        "each EMA is SMA-seeded over its own first bars from the first bar, so the fast"
        " EMA has run slow - fast bars longer than TA-Lib's, which starts the fast EMA on"
        " the bar the slow one starts (seeded over the fast bars ending there); the signal"
        " EMA is seeded with the mean of the first signal MACD values in both. First value"
        " on the same bar as TA-Lib; the early difference shrinks by 1 - 2/(fast+1) per bar",
    ),
    "stdev": Notes(
        "period",
        _IN,
        "none; ddof 0 (population) equals TA-Lib STDDEV with nbdev 1, ddof 1 is the sample",
    ),
    "roc": Notes(
        "period + 1",
        "yes: 100*(x - x[period])/x[period], x the current bar's source",
        "none; equals TA-Lib ROC",
    ),
    "highest": Notes(
        "period",
        _IN + " (so high > highest never holds; compare with highest[1])",
        "none; equals TA-Lib MAX",
    ),
    "lowest": Notes(
        "period",
        _IN + " (so low < lowest never holds; compare with lowest[1])",
        "none; equals TA-Lib MIN",
    ),
    "donchian": Notes(
        "period",
        _IN + " (a breakout is close > dc.upper[1])",
        "none (highest high, lowest low); no TA-Lib function",
    ),
    "vwap": Notes(
        "1",
        "yes: sums since 00:00 UTC include the current bar",
        "none: the sums restart with the first bar of each UTC day; no TA-Lib function",
    ),
    "swing": Notes(
        "left + right + 1 at least: until a swing high and a swing low are confirmed",
        "the current bar can confirm a pivot; the pivot itself is at least right bars"
        " back (never a bar that is not yet confirmed)",
        "none; no TA-Lib function",
    ),
}
