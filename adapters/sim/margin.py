"""Margin arithmetic of a USDT perpetual, isolated or cross, in exact integers.

The position's initial margin is ``IM = ceil(entry_value / leverage)``, its maintenance
margin ``MM = ceil(entry_value * mmr_e8 / 1e8)`` (on the entry value). What backs the
position is its *margin*: ``IM`` when isolated, the whole wallet balance when cross
(Bybit's unified account: liquidation when the equity, wallet + unrealized PnL, falls to
the maintenance margin). For ``q`` lots with cost basis ``entry_value`` (money),
``u = q * notional_unit`` and ``M`` that margin:

* liquidation price, long  ``ceil((entry_value - M + MM) / u)``  (loss = M - MM)
* liquidation price, short ``floor((entry_value + M - MM) / u)``
* bankruptcy price, long  ``ceil((entry_value - M) / u)``  (loss = the whole M)
* bankruptcy price, short ``floor((entry_value + M) / u)``

These are Bybit's published formulas (isolated: LP = entry -/+ (IM - MM) / qty) written
in money. Rounding moves both prices towards the entry (liquidated no later than the
exact price; the loss never exceeds M).

Order cost (Bybit's pre-trade check, "Order Cost = Initial Margin + Fee to Open + Fee to
Close"): for an opening notional ``N`` at leverage ``L`` and taker rate ``f``,
``ceil(N / L) + fee(N, f) + fee(N * (L - 1) / L, f)`` for a buy and ``(L + 1) / L`` for a
sell: the fee to close is charged at the order's bankruptcy price.
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
    """Isolated: ticks at which the position is liquidated; 0 when flat.

    A 1x long is liquidated only when the price falls to about ``MM`` per unit (near zero).
    """
    im = initial_margin(entry_value, leverage)
    return liquidation_at_margin(qty, entry_value, notional_unit, im, mmr_e8)


def liquidation_at_margin(
    qty: int, entry_value: int, notional_unit: int, margin: int, mmr_e8: int
) -> int:
    """Ticks at which ``margin`` less the loss falls to the maintenance margin; 0 when flat
    or (a long) when no positive price can use the margin up."""
    if qty == 0:
        return 0
    unit = abs(qty) * notional_unit
    mm = maintenance_margin(entry_value, mmr_e8)
    if qty > 0:
        return max(0, _ceil_div(entry_value - margin + mm, unit))
    return max(0, (entry_value + margin - mm) // unit)


def bankruptcy_price(qty: int, entry_value: int, notional_unit: int, leverage: int) -> int:
    """Isolated: ticks at which the position's loss equals its initial margin; 0 when flat.

    Never below one tick (for a 1x long the exact price would be 0).
    """
    im = initial_margin(entry_value, leverage)
    return bankruptcy_at_margin(qty, entry_value, notional_unit, im)


def bankruptcy_at_margin(qty: int, entry_value: int, notional_unit: int, margin: int) -> int:
    """Ticks at which the loss equals ``margin``; 0 when flat, never below one tick."""
    if qty == 0:
        return 0
    unit = abs(qty) * notional_unit
    if qty > 0:
        return max(1, _ceil_div(entry_value - margin, unit))  # a price is at least one tick
    return max(1, (entry_value + margin) // unit)


def _fee_at(notional: int, num: int, den: int, rate_e8: int) -> int:
    """``fee_for(notional * num / den, rate)`` without rounding the notional first."""
    raw = notional * num * rate_e8
    scale = den * RATE_SCALE
    return _ceil_div(raw, scale) if raw >= 0 else -((-raw) // scale)


def order_cost(notional: int, buy: bool, leverage: int, taker_e8: int) -> int:
    """Bybit's order cost of opening ``notional`` (money): IM + fee to open + fee to close
    at the bankruptcy price ``price * (1 -/+ 1 / leverage)`` (buy / sell)."""
    im = initial_margin(notional, leverage)
    to_open = _fee_at(notional, 1, 1, taker_e8)
    to_close = _fee_at(notional, leverage - 1 if buy else leverage + 1, leverage, taker_e8)
    return im + to_open + to_close
