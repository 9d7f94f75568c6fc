"""Margin arithmetic of a USDT perpetual, isolated-style, in exact integers.

The position's margin is its initial margin ``IM = ceil(entry_value / leverage)``;
maintenance margin ``MM = ceil(entry_value * mmr_e8 / 1e8)`` (on the entry value, as
Bybit computes it for isolated positions). For ``q`` lots with cost basis
``entry_value`` (money) and ``u = q * notional_unit``:

* liquidation price, long  ``ceil((entry_value - IM + MM) / u)``  (loss = IM - MM)
* liquidation price, short ``floor((entry_value + IM - MM) / u)``
* bankruptcy price, long  ``ceil((entry_value - IM) / u)``  (loss = the whole IM)
* bankruptcy price, short ``floor((entry_value + IM) / u)``

Rounding moves the liquidation price towards the entry (liquidated no later than the
exact price) and the bankruptcy price towards the entry too (the loss never exceeds IM).
"""

from __future__ import annotations

from engine.instrument import RATE_SCALE


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def initial_margin(notional: int, leverage: int) -> int:
    """IM in money for a notional in money (rounded up)."""
    return _ceil_div(notional, leverage)


def maintenance_margin(notional: int, mmr_e8: int) -> int:
    """MM in money for a notional in money (rounded up)."""
    return _ceil_div(notional * mmr_e8, RATE_SCALE)


def liquidation_price(
    qty: int, entry_value: int, notional_unit: int, leverage: int, mmr_e8: int
) -> int:
    """Ticks at which the position is liquidated; 0 when flat.

    A 1x long is liquidated only when the price falls to about ``MM`` per unit (near zero).
    """
    if qty == 0:
        return 0
    unit = abs(qty) * notional_unit
    im = initial_margin(entry_value, leverage)
    mm = maintenance_margin(entry_value, mmr_e8)
    if qty > 0:
        return max(0, _ceil_div(entry_value - im + mm, unit))
    return (entry_value + im - mm) // unit


def bankruptcy_price(qty: int, entry_value: int, notional_unit: int, leverage: int) -> int:
    """Ticks at which the position's loss equals its initial margin; 0 when flat.

    Never below one tick (for a 1x long the exact price would be 0).
    """
    if qty == 0:
        return 0
    unit = abs(qty) * notional_unit
    im = initial_margin(entry_value, leverage)
    if qty > 0:
        return max(1, _ceil_div(entry_value - im, unit))  # a price is at least one tick
    return (entry_value + im) // unit
