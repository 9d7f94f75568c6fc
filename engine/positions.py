"""One-way position accounting in exact integers, shared by the engine and the simulated venue.

A position is a signed quantity in lots (+ long, - short) and a cost basis
``entry_value`` in money (the notional paid for the open quantity, always >= 0).
The average entry price is ``entry_value / (|qty| * notional_unit)`` ticks, a
fraction, so it is derived, never stored.

Rounding rule: closing ``c`` of ``|q|`` lots releases ``entry_value * c // |q|`` of
the basis (floor). What is released plus what stays is always the whole basis, so
no money is created or lost: over a round trip the realized PnL is exactly
``exit notional - entry notional`` (sign by side), and
``balance == initial + sum(realized) - sum(fees) - sum(funding)`` holds to the unit.
"""

from __future__ import annotations

from operator import truediv  # int / int rounded once, as Python does, also under mypyc

import msgspec

from engine.events import BUY


class Position(msgspec.Struct, gc=False):
    """Mutable position state (owned by whoever folds it)."""

    qty: int = 0
    entry_value: int = 0
    realized: int = 0  # realized PnL, money, excluding fees and funding
    fees: int = 0  # fees paid, money (rebates negative)
    funding: int = 0  # funding paid, money (received negative)

    def avg_entry_ticks(self, notional_unit: int) -> float:
        """Average entry in (fractional) ticks, for reports and strategy features."""
        if self.qty == 0:
            return 0.0
        return truediv(self.entry_value, abs(self.qty) * notional_unit)

    def unrealized(self, mark_ticks: int, notional_unit: int) -> int:
        """PnL in money if the position were closed at ``mark_ticks`` (no fees)."""
        value = abs(self.qty) * mark_ticks * notional_unit
        return value - self.entry_value if self.qty > 0 else self.entry_value - value


def apply_fill(
    pos: Position, side: str, lots: int, ticks: int, fee: int, notional_unit: int
) -> int:
    """Fold one fill into ``pos``; return the PnL it realized (money, before fees).

    A fill larger than the open opposite quantity closes it and opens the rest the
    other way (a flip); whether a flip is *allowed* is the order layer's business.
    """
    signed = lots if side == BUY else -lots
    notional = ticks * lots * notional_unit
    pos.fees += fee
    q = pos.qty
    if q == 0 or (q > 0) == (signed > 0):
        pos.qty = q + signed
        pos.entry_value += notional
        return 0
    open_lots = abs(q)
    closing = min(lots, open_lots)
    released = pos.entry_value * closing // open_lots
    exit_value = ticks * closing * notional_unit
    realized = exit_value - released if q > 0 else released - exit_value
    pos.entry_value -= released
    pos.qty = q + signed
    if closing < lots:  # flipped: the remainder opens a new position at this price
        pos.entry_value = ticks * (lots - closing) * notional_unit
    elif pos.qty == 0:
        pos.entry_value = 0
    pos.realized += realized
    return realized


def apply_funding(pos: Position, amount: int) -> None:
    """Funding paid (> 0) or received (< 0)."""
    pos.funding += amount
