"""The contract between the engine and a strategy (a compiled IdeaCard or a Python class).

On every ``CandleClosed`` of the execution timeframe the engine updates one
``MarketContext`` in place (no per-candle allocation) and calls
``strategy.on_candle(candle, ctx)``; the strategy returns intents (usually none).

A strategy runs *inside* the fold, so it must be deterministic: no clock, no
randomness, no I/O, no iteration over sets of strings, floats computed in one
fixed order. Its whole state must be capturable by ``snapshot()`` (msgspec
builtins) and restored by ``restore()``, so a checkpoint restores it bit for bit.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from engine.events import CandleClosed, Intent


class StrategyError(Exception):
    """The user's strategy code failed while running: which call, what it raised, where."""


def describe_failure(exc: BaseException) -> str:
    """``ZeroDivisionError: division by zero (mystrat.py, line 4)``: the innermost frame."""
    import traceback

    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" ({last.filename}, line {last.lineno})"
    return text


class MarketContext(msgspec.Struct, gc=False):
    """What a strategy may know besides candles: its position and account, as of now."""

    position_qty: int = 0  # signed lots
    avg_entry: float = 0.0  # ticks
    bars_in_trade: int = 0
    unrealized: int = 0  # money, at the candle close
    unrealized_pct: float = 0.0  # of the position's cost basis
    equity: int = 0  # money, marked at the candle close
    balance: int = 0  # money, realized
    open_orders: int = 0
    halted: bool = False
    adds_in_trade: int = 0  # fills that grew the current position after it opened
    bars_since_exit: int = 0  # bars since a position last closed (or the session began)
    trades_today: int = 0  # positions opened this UTC day (flips included)


class Strategy(Protocol):
    """What the engine needs from a strategy."""

    def on_candle(self, candle: CandleClosed, ctx: MarketContext) -> list[Intent]:
        """Called once per closed execution candle; return intents (may be empty)."""
        ...

    def is_warm(self) -> bool:
        """True once every feature on every timeframe has enough history."""
        ...

    def snapshot(self) -> Any:
        """The full strategy state as msgspec-encodable builtins."""
        ...

    def restore(self, state: Any) -> None:
        """Inverse of ``snapshot``."""
        ...


class NullStrategy:
    """Never trades; used for benchmarks and data-only sessions."""

    def on_candle(self, candle: CandleClosed, ctx: MarketContext) -> list[Intent]:
        return []

    def is_warm(self) -> bool:
        return True

    def snapshot(self) -> Any:
        return None

    def restore(self, state: Any) -> None:
        return None
