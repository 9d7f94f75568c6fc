"""Balance read model: wallet balance and equity marked at each execution candle close.

``balance = initial + realized - fees - funding`` exactly (integers, money units);
``equity = balance + unrealized`` at the last execution candle's close. The initial
balance comes from ``SessionStarted``.
"""

from __future__ import annotations

from engine.events import CandleClosed, SessionStarted
from projections.positions import PositionView


class BalanceView:
    """Feed it every event of the session with ``apply``."""

    __slots__ = ("equity", "initial", "marked_ts", "positions")

    def __init__(self, initial: int = 0) -> None:
        self.initial = initial
        self.positions = PositionView()
        self.equity = initial  # marked at the last execution candle close
        self.marked_ts = 0

    def apply(self, event: object) -> None:
        self.positions.apply(event)
        tp = type(event)
        if tp is CandleClosed:
            assert isinstance(event, CandleClosed)
            pv = self.positions
            if event.symbol == pv.symbol and event.timeframe == pv.timeframe:
                self.equity = self.balance + pv.unrealized
                self.marked_ts = event.ts
        elif tp is SessionStarted:
            assert isinstance(event, SessionStarted)
            self.initial = event.initial_balance
            self.equity = self.initial

    @property
    def balance(self) -> int:
        p = self.positions.position
        return self.initial + p.realized - p.fees - p.funding
