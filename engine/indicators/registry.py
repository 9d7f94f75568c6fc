"""The indicator registry: names -> classes with their parameters, outputs and docs.

A card validator uses ``INDICATORS`` to check parameters before anything runs and
``make_indicator`` to build one, with close-match suggestions for misspellings.
"""

from __future__ import annotations

import difflib
from typing import Any, Final

import msgspec

from engine.indicators.averages import EMA, SMA, WMA
from engine.indicators.base import Indicator, IndicatorError, Param
from engine.indicators.channels import Donchian, Highest, Lowest
from engine.indicators.notes import NOTES
from engine.indicators.oscillators import MACD, ROC, RSI
from engine.indicators.swings import Swing
from engine.indicators.volatility import ATR, Bollinger, StDev
from engine.indicators.vwap import VWAP


class IndicatorSpec(msgspec.Struct, frozen=True):
    """What a card may say about one indicator: its class, parameters and outputs."""

    name: str
    cls: type[Indicator]
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    doc: str
    units: tuple[str, ...] = ()  # per output, one of base.UNITS
    ready_after: str = ""  # these three from ``notes``: for the generated reference
    current_bar: str = ""
    seeding: str = ""

    def param(self, name: str) -> Param:
        """The named parameter; IndicatorError with a suggestion if there is none."""
        for p in self.params:
            if p.name == name:
                return p
        names = [p.name for p in self.params]
        close = difflib.get_close_matches(name.lower(), names, n=1)
        raise IndicatorError(
            f"{self.name}: unknown parameter {name!r}; parameters: {', '.join(names) or '(none)'}",
            indicator=self.name,
            param=name,
            suggestion=close[0] if close else "",
        )

    def defaults(self) -> dict[str, Any]:
        """Parameter name -> default value, in declaration order."""
        return {p.name: p.default for p in self.params}


def _spec(cls: type[Indicator]) -> IndicatorSpec:
    n = NOTES[cls.name]  # every indicator is documented (KeyError at import otherwise)
    return IndicatorSpec(
        cls.name,
        cls,
        cls.params,
        cls.outputs,
        cls.doc,
        cls.units,
        ready_after=n.ready_after,
        current_bar=n.current_bar,
        seeding=n.seeding,
    )


_CLASSES: Final[tuple[type[Indicator], ...]] = (
    SMA,
    EMA,
    WMA,
    RSI,
    ATR,
    Bollinger,
    MACD,
    StDev,
    ROC,
    Highest,
    Lowest,
    Donchian,
    VWAP,
    Swing,
)

INDICATORS: Final[dict[str, IndicatorSpec]] = {c.name: _spec(c) for c in _CLASSES}


def get_spec(name: str) -> IndicatorSpec:
    """The spec of an indicator name; IndicatorError with a close match if unknown."""
    spec = INDICATORS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name.lower(), list(INDICATORS), n=1, cutoff=0.5)
        raise IndicatorError(
            f"unknown indicator {name!r}; known: {', '.join(INDICATORS)}",
            indicator=name,
            suggestion=close[0] if close else "",
        )
    return spec


def validate_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """All parameters of ``name`` with defaults filled in; IndicatorError if any is bad.

    Checks names (with suggestions), types, ranges and choices; cross-parameter rules
    (macd fast < slow, stdev period > ddof) are checked when the indicator is built.
    """
    spec = get_spec(name)
    full = spec.defaults()
    for key, value in params.items():
        spec.param(key).check(name, value)
        full[key] = value
    return full


def make_indicator(name: str, params: dict[str, Any] | None = None) -> Indicator:
    """Build the indicator ``name`` with ``params`` (missing ones take their defaults)."""
    full = validate_params(name, params or {})
    return INDICATORS[name].cls(**full)
