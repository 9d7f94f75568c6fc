"""Incremental (O(1) per candle) indicators over integer-tick candles.

Build them by name with ``make_indicator("ema", {"period": 50})``; see ``base`` for the
contract every indicator keeps (update / ready / value / get / snapshot / restore).
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
