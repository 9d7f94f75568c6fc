"""The intrabar path: which orders a candle can reach, and which extreme it visits first.

A candle is walked ``open -> first extreme -> second extreme -> close``. These pure
functions decide the order of the extremes and prune orders the candle cannot touch.
"""

from __future__ import annotations

from collections.abc import Iterable

from adapters.sim.orders import LIMIT, MARKET, SimOrder
from engine.events import BUY, CandleClosed


def reachable(o: SimOrder, op: int, high: int, low: int) -> bool:
    """Can a candle with this open/high/low make ``o`` act (trigger or fill)?"""
    if o.trigger_price and not o.triggered:
        return o.trigger_price <= high if o.trigger_direction == 1 else o.trigger_price >= low
    if o.order_type == MARKET:
        return True
    if o.side == BUY:
        return o.price > low or (o.taker and o.price >= op)
    return o.price < high or (o.taker and o.price <= op)


def exits_reached(
    candle: CandleClosed, position_qty: int, liq_price: int, orders: Iterable[SimOrder]
) -> tuple[bool, bool]:
    """(an adverse exit is reached, a favourable exit is reached) within the candle's range.

    Exits are the position's reduce-only orders and its liquidation price; only those
    the path must travel to count (not those already crossed at the open).
    """
    long = position_qty > 0
    op, hi, lo = candle.open, candle.high, candle.low
    adverse = (lo <= liq_price < op) if long else (op < liq_price <= hi)
    favourable = False
    for o in orders:
        if not (o.reduce_only and (o.side == BUY) != long):
            continue
        if o.trigger_price and not o.triggered:
            t = o.trigger_price
            if o.trigger_direction == 1 and op < t <= hi:
                favourable, adverse = (True, adverse) if long else (favourable, True)
            elif o.trigger_direction == 2 and lo <= t < op:
                favourable, adverse = (favourable, True) if long else (True, adverse)
        elif o.order_type == LIMIT and (
            (long and op <= o.price < hi) or (not long and lo < o.price <= op)
        ):
            favourable = True
    return adverse, favourable


def high_first(
    candle: CandleClosed,
    position_qty: int,
    liq_price: int,
    orders: Iterable[SimOrder],
    both_hit: str,
) -> bool:
    """Does the path visit the high before the low?

    The nearer extreme to the open comes first; on a tie, the one adverse to the position
    (the low when flat). But when the position's own exits are reached on both sides,
    ``both_hit`` decides: "worse" visits the adverse side first, "better" the favourable
    one, "path" keeps the nearer-extreme rule.
    """
    if position_qty and both_hit != "path":
        adverse, favourable = exits_reached(candle, position_qty, liq_price, orders)
        if adverse and favourable:
            adverse_is_high = position_qty < 0
            return adverse_is_high if both_hit == "worse" else not adverse_is_high
    up = candle.high - candle.open
    down = candle.open - candle.low
    if up != down:
        return up < down
    return position_qty < 0
