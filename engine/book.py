"""The one local book: orders, positions (by symbol) and balance, folded by the engine's rules.

The engine owns one ``Book`` in its state and changes it only through these methods;
every reader of a log (the account view behind ``report``, metrics and ``inspect``,
reconciliation's local side) folds its own ``Book`` from the logged events with
``apply`` -- the same rules, no strategy needed. So what the engine refused (a
duplicate execution, a fill of an order it never placed, an overfill) counts nowhere.

* Orders: ``engine.orders.OrderBook`` (the state machine and the seen execution ids).
* Positions: one ``engine.positions.Position`` per symbol, created for the instruments
  the book is told about (a session's, today; a portfolio's later). An execution for
  a symbol the book does not hold is refused.
* Balance is derived, never kept: ``initial + sum(realized - fees - funding)``.
  Equity is ``balance + unrealized`` marked at each symbol's last close: ``equity`` is
  the one place it is computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from engine.events import (
    CommandRejected,
    Fill,
    FundingPaid,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    PositionDrift,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import Instrument
from engine.orders import Order, OrderBook, TransitionError, VenueOrderEvent
from engine.positions import Position, apply_fill, apply_funding

_VENUE_ORDER_EVENTS = (
    OrderAccepted,
    OrderRejected,
    OrderTriggered,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
)


class Book:
    """Orders, positions by symbol and the balance of one account as this session knows it."""

    __slots__ = ("initial_balance", "marks", "orders", "positions", "symbol", "units")

    def __init__(
        self, symbol: str, notional_unit: int, initial_balance: int, max_closed: int | None = None
    ) -> None:
        self.symbol = symbol  # the session's (first) symbol
        self.units: dict[str, int] = {symbol: notional_unit}
        self.positions: dict[str, Position] = {symbol: Position()}
        self.marks: dict[str, int] = {symbol: 0}  # last close per symbol, ticks (0: none)
        self.orders = OrderBook(max_closed=max_closed)
        self.initial_balance = initial_balance

    @classmethod
    def of_session(cls, started: SessionStarted, max_closed: int | None = None) -> Book:
        unit = Instrument(started.instrument).notional_unit
        return cls(started.instrument.symbol, unit, started.initial_balance, max_closed)

    # ------------------------------------------------------------------ reading

    @property
    def position(self) -> Position:
        """The session symbol's position."""
        return self.positions[self.symbol]

    @property
    def balance(self) -> int:
        total = self.initial_balance
        for p in self.positions.values():
            total += p.realized - p.fees - p.funding
        return total

    def unrealized(self, symbol: str, mark: int) -> int:
        """Unrealized PnL of ``symbol``'s position at ``mark`` ticks (0 if flat or unmarked)."""
        p = self.positions.get(symbol)
        if p is None or p.qty == 0 or mark <= 0:
            return 0
        return p.unrealized(mark, self.units[symbol])

    def equity(self, marks: Mapping[str, int] | None = None) -> int:
        """Balance plus every position's unrealized PnL at ``marks`` (default: the book's)."""
        at = self.marks if marks is None else marks
        total = self.balance
        for symbol, p in self.positions.items():
            if p.qty:
                total += self.unrealized(symbol, at.get(symbol, 0))
        return total

    def get(self, client_id: str) -> Order | None:
        return self.orders.get(client_id)

    # ------------------------------------------------------------------ the rules

    def submit(self, cmd: SubmitOrder) -> Order | None:
        return self.orders.submit(cmd)

    def fill(self, ev: Fill) -> TransitionError | Order:
        """Fold a fill into its order and position; the order, or why it was refused."""
        unit = self.units.get(ev.symbol)
        res = self.orders.fill(ev, unit if unit is not None else 1)
        if isinstance(res, TransitionError):
            return res
        apply_fill(
            self.positions[res.symbol], ev.side, ev.qty, ev.price, ev.fee, self.units[res.symbol]
        )
        return res

    def venue_event(self, ev: VenueOrderEvent) -> TransitionError | Order:
        return self.orders.venue_event(ev)

    def funding(self, ev: FundingPaid) -> TransitionError | None:
        symbol = ev.symbol if ev.symbol in self.positions else self.symbol
        err = self.orders.funding(ev, symbol)
        if err is None:
            apply_funding(self.positions[symbol], ev.amount)
        return err

    def liquidation(self, ev: Liquidated) -> TransitionError | None:
        symbol = ev.symbol if ev.symbol in self.positions else self.symbol
        err = self.orders.liquidation(ev, symbol, self.units[symbol])
        if err is None:
            apply_fill(
                self.positions[symbol], ev.side, ev.qty, ev.price, ev.fee, self.units[symbol]
            )
        return err

    def adopt(self, ev: PositionDrift) -> bool:
        """Take the venue's position when the drift says so; True if it did."""
        p = self.positions.get(ev.symbol)
        if not ev.adopt or p is None:
            return False
        p.qty = ev.venue_qty
        p.entry_value = ev.venue_entry_value if ev.venue_qty else 0
        return True

    def command_rejected(self, ev: CommandRejected) -> TransitionError | Order:
        """An amend or cancel the venue refused: the order is no longer waiting for it."""
        order = self.orders.open.get(ev.client_id)
        if order is None:
            closed = self.orders.closed.get(ev.client_id)
            st = closed.status if closed is not None else ""
            why = f"order is {st}" if st else "unknown client_id"
            return TransitionError(ev.client_id, "CommandRejected", st, why)
        if ev.command == "amend":
            order.amend_pending = False
        elif ev.command == "cancel":
            order.cancel_pending = False
        return order

    def mark(self, symbol: str, close: int) -> None:
        if symbol in self.marks:
            self.marks[symbol] = close

    # ------------------------------------------------------------- from a log

    def apply(self, event: object) -> TransitionError | Order | None:
        """Fold one logged event (input or derived) the way the engine did; the rest is
        ignored. Returns the refusal, the order changed, or None."""
        rule = _RULES.get(type(event))
        return rule(self, event) if rule is not None else None

    def _adopted(self, ev: PositionDrift) -> None:
        self.adopt(ev)


#: The rule of ``Book`` each kind of logged event goes through (``apply``).
_RULES: Final[dict[type, Callable[[Book, Any], TransitionError | Order | None]]] = {
    Fill: Book.fill,
    SubmitOrder: Book.submit,
    **{kind: Book.venue_event for kind in _VENUE_ORDER_EVENTS},
    FundingPaid: Book.funding,
    Liquidated: Book.liquidation,
    PositionDrift: Book._adopted,
    CommandRejected: Book.command_rejected,
}
