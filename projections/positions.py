"""Position read model: quantity, average entry, realized/unrealized PnL, fees, funding.

Folded with the engine's own functions (``engine.orders.OrderBook`` decides which
fills count, ``engine.positions.apply_fill`` does the arithmetic), so it equals the
engine's position exactly. Unrealized PnL is marked at the last execution candle.
"""

from __future__ import annotations

from engine.events import (
    CandleClosed,
    Fill,
    FundingPaid,
    Liquidated,
    SessionStarted,
)
from engine.instrument import Instrument
from engine.positions import Position, apply_fill, apply_funding
from projections.orders import OrdersView


class PositionView:
    """One symbol's position; feed it every event of the session with ``apply``."""

    __slots__ = ("mark", "notional_unit", "orders", "position", "symbol", "timeframe")

    def __init__(self, symbol: str = "", timeframe: str = "", notional_unit: int = 1) -> None:
        self.orders = OrdersView(notional_unit)
        self.position = Position()
        self.symbol = symbol
        self.timeframe = timeframe
        self.notional_unit = notional_unit
        self.mark = 0  # ticks: the last execution candle's close

    def apply(self, event: object) -> None:
        tp = type(event)
        if tp is CandleClosed:
            assert isinstance(event, CandleClosed)
            if event.symbol == self.symbol and event.timeframe == self.timeframe:
                self.mark = event.close
        elif tp is Fill:
            assert isinstance(event, Fill)
            if self.orders.apply(event) is not None:
                apply_fill(
                    self.position, event.side, event.qty, event.price, event.fee, self.notional_unit
                )
        elif tp is FundingPaid:
            assert isinstance(event, FundingPaid)
            if self.orders.book.funding(event, self.symbol) is None:
                apply_funding(self.position, event.amount)
        elif tp is Liquidated:
            assert isinstance(event, Liquidated)
            if self.orders.book.liquidation(event, self.symbol, self.notional_unit) is None:
                apply_fill(
                    self.position, event.side, event.qty, event.price, event.fee, self.notional_unit
                )
        else:
            if tp is SessionStarted:
                assert isinstance(event, SessionStarted)
                self.symbol = event.instrument.symbol
                self.timeframe = event.timeframe
                self.notional_unit = Instrument(event.instrument).notional_unit
            self.orders.apply(event)

    @property
    def qty(self) -> int:
        return self.position.qty

    @property
    def avg_entry(self) -> float:
        """Average entry in ticks (a fraction; for display)."""
        return self.position.avg_entry_ticks(self.notional_unit)

    @property
    def realized(self) -> int:
        return self.position.realized

    @property
    def unrealized(self) -> int:
        if self.position.qty == 0 or self.mark == 0:
            return 0
        return self.position.unrealized(self.mark, self.notional_unit)

    @property
    def fees(self) -> int:
        return self.position.fees

    @property
    def funding(self) -> int:
        return self.position.funding
