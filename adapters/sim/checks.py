"""Stateless parameter checks of a new order (Bybit's 10001 "params error" family)."""

from __future__ import annotations

from adapters.sim.orders import LIMIT, MARKET, POST_ONLY, TIME_IN_FORCE
from engine.events import BUY, SELL, SubmitOrder
from engine.instrument import Instrument


def param_error(cmd: SubmitOrder, instrument: Instrument) -> str:
    """Why ``cmd`` is malformed for ``instrument`` ("" when it is well formed)."""
    if cmd.symbol != instrument.symbol:
        return f"symbol {cmd.symbol} is not {instrument.symbol}"
    if cmd.side not in (BUY, SELL):
        return f"side {cmd.side!r} invalid"
    if cmd.order_type not in (MARKET, LIMIT):
        return f"order type {cmd.order_type!r} invalid"
    if cmd.time_in_force not in TIME_IN_FORCE:
        return f"time in force {cmd.time_in_force!r} invalid"
    if cmd.time_in_force == POST_ONLY and cmd.order_type == MARKET:
        return "PostOnly needs a limit order"
    lots = cmd.qty
    if (
        lots <= 0
        or lots < instrument.min_lots
        or (instrument.max_lots and lots > instrument.max_lots)
    ):
        return f"qty {lots} lots outside [{instrument.min_lots}, {instrument.max_lots or 'inf'}]"
    if cmd.order_type == LIMIT and cmd.price <= 0:
        return "a limit order needs a price > 0"
    if cmd.trigger_price < 0:
        return "trigger price must not be negative"
    if cmd.trigger_price and cmd.trigger_direction not in (1, 2):
        return "trigger_direction must be 1 (rising) or 2 (falling)"
    return ""
