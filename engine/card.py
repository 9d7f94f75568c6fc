"""A validated IdeaCard as plain msgspec data: what the compiler (engine.plan) consumes.

The app edge (replay.cards) reads YAML, validates it with pydantic and builds a
``CardSpec``; the engine never sees YAML or pydantic. Every node keeps ``path``, the
card field path it came from ("blocks[2].then.enter_long.risk_pct"), so a compile error
(unknown name in an expression, unknown indicator, ...) can point back into the card.

Units as written in the card (the compiler converts them with the instrument):
expressions and literal prices are in the quote currency (USDT), quantities in the base
currency (BTC); see engine/expressions.py for how a bare number is read.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from engine.config import EngineConfig

#: An operand: an expression string ("close - 0.5 * atr") or a number.
Operand = Union[str, float, int]


class CardCompileError(ValueError):
    """A card that validated structurally but cannot be compiled (unknown name, ...)."""

    def __init__(
        self, path: str, message: str, found: Any = None, expected: str = "", suggestion: str = ""
    ) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.found = found
        self.expected = expected
        self.suggestion = suggestion


class FeatureSpec(msgspec.Struct, frozen=True):
    """One named indicator instance on one timeframe."""

    name: str
    indicator: str
    params: dict[str, Any]
    timeframe: str
    path: str = ""


# ---------------------------------------------------------------- conditions


class Compare(msgspec.Struct, frozen=True, tag=True):
    """``left op right``, op one of gt, lt, ge, le, eq, ne."""

    op: str
    left: Operand
    right: Operand
    path: str = ""


class Cross(msgspec.Struct, frozen=True, tag=True):
    """``a`` crosses above (``up``) or below ``b`` on this bar."""

    up: bool
    a: Operand
    b: Operand
    path: str = ""


class AllOf(msgspec.Struct, frozen=True, tag=True):
    items: list[Condition]
    path: str = ""


class AnyOf(msgspec.Struct, frozen=True, tag=True):
    items: list[Condition]
    path: str = ""


class Not(msgspec.Struct, frozen=True, tag=True):
    item: Condition
    path: str = ""


class Held(msgspec.Struct, frozen=True, tag=True):
    """``cond`` has been true on each of the last ``bars`` bars (this one included)."""

    bars: int
    cond: Condition
    path: str = ""


class Within(msgspec.Struct, frozen=True, tag=True):
    """``then`` is true now and ``first`` was true on one of the last ``bars`` bars (or now)."""

    bars: int
    first: Condition
    then: Condition
    path: str = ""


class PositionIs(msgspec.Struct, frozen=True, tag=True):
    """``state`` is flat, long or short."""

    state: str
    path: str = ""


class Expr(msgspec.Struct, frozen=True, tag=True):
    """A boolean expression string: "close > slow and rsi < 30"."""

    text: str
    path: str = ""


Condition = Union[Compare, Cross, AllOf, AnyOf, Not, Held, Within, PositionIs, Expr]


# ------------------------------------------------------------------- intents


class IntentSpec(msgspec.Struct, frozen=True):
    """One intent of a block; expression fields are strings or numbers, None = not given.

    ``qty`` is in base currency (converted to lots, rounded down). Price-like fields
    (price, stop_loss, take_profit) are absolute prices; distance-like fields
    (stop_distance, trail_distance, offset) are price distances.
    """

    action: str
    path: str = ""
    side: str = ""  # place_limit only: "long" | "short"
    qty: float | None = None
    equity_pct: float = 0.0
    risk_pct: float = 0.0
    stop_distance: Operand | None = None
    reduce_pct: float = 0.0
    price: Operand | None = None
    stop_loss: Operand | None = None
    take_profit: Operand | None = None
    trail_distance: Operand | None = None
    style: str = ""  # "" = the card's execution default
    offset: Operand | None = None
    timeout_bars: int = 0
    slices: int = 0
    slice_every_bars: int = 0
    slice_every_ms: int = 0


class BlockSpec(msgspec.Struct, frozen=True):
    """First-match case: when ``when`` holds, emit ``then`` (in order)."""

    name: str
    when: Condition
    then: list[IntentSpec]
    path: str = ""


class CardSpec(msgspec.Struct, frozen=True):
    """The whole validated card (the sim section lives at the app edge, not here)."""

    name: str
    symbol: str
    timeframe: str = "1m"
    higher: tuple[str, ...] = ()
    features: tuple[FeatureSpec, ...] = ()
    blocks: tuple[BlockSpec, ...] = ()
    engine: EngineConfig = EngineConfig()
    strategy_class: str = ""
    strategy_params: dict[str, Any] = {}
