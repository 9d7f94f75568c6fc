"""Pre-trade risk checks, reading the engine's own up-to-date position and balance.

Every check returns the reason an order that *increases* exposure must be refused, or
None. Exits and reductions are never checked here: a halted or loss-limited engine
can always get flat. Percentages are taken to 1e-6 % (``pct_of``) so that every
limit is an exact integer comparison.
"""

from __future__ import annotations

from operator import truediv  # int / int rounded once, as Python does, also under mypyc
from typing import Final

from engine.events import BUY
from engine.state import DAY_MS, EngineState

_PCT_SCALE: Final = 1_000_000  # a percentage is rounded to 1e-6 %


def pct_of(amount: int, pct: int | float) -> int:
    """``amount * pct / 100``, floored, with ``pct`` rounded to 1e-6 % (exact integers)."""
    return amount * round(pct * _PCT_SCALE) // (100 * _PCT_SCALE)


def roll_day(state: EngineState) -> None:
    """At the first execution candle of a new UTC day: new starting equity, lift the limit.

    The day's starting equity is the equity marked at the previous candle close (or
    the balance, for the very first candle), i.e. the equity at the day boundary.
    """
    day = state.ts // DAY_MS
    state.day_start_equity = state.equity  # call before the new close is recorded
    state.day = day
    state.next_day_ms = (day + 1) * DAY_MS
    state.day_halted = False
    state.trades_today = 0


def check_daily_loss(state: EngineState) -> bool:
    """Set (and return) the daily halt if today's loss reached the configured limit."""
    pct = state.config.risk.daily_loss_limit_pct
    if pct <= 0 or state.day_halted:
        return state.day_halted
    loss = state.day_start_equity - state.equity
    if loss > 0 and loss >= pct_of(state.day_start_equity, pct):
        state.day_halted = True
    return state.day_halted


def exposure_lots(state: EngineState, side: str) -> int:
    """Lots the account would hold on ``side`` if every resting non-reduce order filled."""
    signed = state.position.qty
    for order in state.book.open.values():
        if not order.reduce_only and order.side == side:
            signed += order.remaining if side == BUY else -order.remaining
    return signed if side == BUY else -signed


def check_increase(state: EngineState, side: str, lots: int, price: int) -> str | None:
    """Why adding ``lots`` on ``side`` at ``price`` ticks is refused, or None if allowed."""
    if state.halted:
        return f"halted: {state.halt_reason}"
    if check_daily_loss(state):
        return "daily loss limit reached"
    limits = state.config.risk
    if limits.max_open_orders > 0 and len(state.book.open) + 1 > limits.max_open_orders:
        return f"max open orders ({limits.max_open_orders}) reached"
    equity = state.equity
    if equity <= 0:
        return "equity is not positive"
    after = max(exposure_lots(state, side), 0) + lots
    notional = state.instrument.notional(price, after)
    cap = limits.max_position_notional
    if cap > 0 and notional > cap:
        return f"position notional {notional} would exceed max {cap}"
    if limits.max_leverage > 0 and notional > pct_of(equity, limits.max_leverage * 100):
        return f"leverage {truediv(notional, equity):.2f} would exceed max {limits.max_leverage}"
    return None
