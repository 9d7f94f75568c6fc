"""Incremental (O(1) per candle) indicators over integer-tick candles.

Build them by name with ``make_indicator("ema", {"period": 50})``; see ``base`` for the
contract every indicator keeps (update / ready / value / get / snapshot / restore).
``value`` is NaN until ``ready``; ``warmup`` is the number of candles that takes.

=========  ==========================  =================  ============================
name       outputs (first = value)     ready after        exact integer state
=========  ==========================  =================  ============================
sma        value                       period             total / divisor
ema        value                       period             -- (float, SMA seed)
wma        value                       period             weighted / divisor
rsi        value (0..100)              period + 1         -- (Wilder)
atr        value (ticks)               period             -- (Wilder, TR in ints)
bollinger  middle, upper, lower, width period             sums of x and x**2
macd       macd, signal, hist          slow + signal - 1  --
stdev      value (ticks)               period             sums of x and x**2
roc        value (percent)             period + 1         --
highest    value                       period             ivalue
lowest     value                       period             ivalue
donchian   upper, lower, middle        period             iupper, ilower
vwap       value (session, UTC day)    1                  price*volume and volume sums
swing      high, low, high_ago, low_ago  a high and a low  --
=========  ==========================  =================  ============================

Crosses: ``cross_state`` for float series, ``sma_compare`` + ``cross_from_compare`` for
two SMAs compared exactly. Sources: close, open, high, low, hl2, hlc3, ohlc4, volume.
"""

from engine.indicators.averages import EMA, SMA, WMA
from engine.indicators.base import SOURCES, Indicator, IndicatorError, Param
from engine.indicators.channels import Donchian, Highest, Lowest
from engine.indicators.cross import cross_from_compare, cross_state, sma_compare
from engine.indicators.oscillators import MACD, ROC, RSI
from engine.indicators.registry import (
    INDICATORS,
    IndicatorSpec,
    get_spec,
    make_indicator,
    validate_params,
)
from engine.indicators.swings import Swing
from engine.indicators.volatility import ATR, Bollinger, StDev
from engine.indicators.vwap import VWAP, session_day

__all__ = [
    "ATR",
    "EMA",
    "INDICATORS",
    "MACD",
    "ROC",
    "RSI",
    "SMA",
    "SOURCES",
    "VWAP",
    "WMA",
    "Bollinger",
    "Donchian",
    "Highest",
    "Indicator",
    "IndicatorError",
    "IndicatorSpec",
    "Lowest",
    "Param",
    "StDev",
    "Swing",
    "cross_from_compare",
    "cross_state",
    "get_spec",
    "make_indicator",
    "session_day",
    "sma_compare",
    "validate_params",
]
