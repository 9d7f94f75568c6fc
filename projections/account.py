"""The account as the log tells it: position, balance, closed trades and the equity curve.

One ``AccountView`` folds a session's events (inputs and derived alike) into the read
models a report needs. It never talks to the engine: it reuses the engine's position
math (``engine.positions``) on the venue's fills, so a report of a live session and
of a backtest are computed the same way.

* Closed trades are round trips: a trade opens when the position leaves zero and
  closes when it returns to zero; a flip closes one trade and opens the next.
* The equity curve has one point per execution-timeframe candle close:
  ``balance + unrealized PnL`` marked at that close.
* ``refusals`` counts what the session refused (``projections.refusals``): every
  event but a candle goes to it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

from engine.events import (
    BUY,
    CandleClosed,
    EventBase,
    Fill,
    FundingPaid,
    Liquidated,
    PositionDrift,
    SessionStarted,
)
from engine.instrument import Instrument
from engine.positions import Position, apply_fill, apply_funding
from projections.refusals import RefusalCount


class Trade(msgspec.Struct, gc=False):
    """One round trip. Prices in ticks (fractional averages), money in 1e-8 units."""

    side: str  # "long" | "short"
    entry_ts: int
    entry_price: float = 0.0
    exit_ts: int = 0
    exit_price: float = 0.0
    qty: int = 0  # the largest absolute size reached, lots
    pnl: int = 0  # realized PnL minus fees and funding while open
    fees: int = 0
    funding: int = 0
    fills: int = 0
    _entry_value: int = 0
    _entry_lots: int = 0
    _exit_value: int = 0
    _exit_lots: int = 0

    @property
    def duration_ms(self) -> int:
        return self.exit_ts - self.entry_ts

    def entry_notional(self, notional_unit: int) -> int:
        """Money entered: the sum of entry fills' price x quantity, in 1e-8 units."""
        return self._entry_value * notional_unit


class _Growing:
    """An int64 column appended once per candle: ``array('q')`` appends cost a few tens of
    nanoseconds, numpy element writes several times that; numpy views it at the end."""

    __slots__ = ("data", "push")

    def __init__(self) -> None:
        self.data = array("q")
        self.push = self.data.append

    @property
    def n(self) -> int:
        return len(self.data)

    def array(self) -> np.ndarray:
        # A copy: a live view would forbid further appends (BufferError).
        return (
            np.frombuffer(self.data, dtype=np.int64).copy() if self.data else np.zeros(0, np.int64)
        )


class AccountView:
    """Folds events into position, balance, trades and the equity curve."""

    def __init__(self) -> None:
        self.started: SessionStarted | None = None
        self.instrument: Instrument | None = None
        self.timeframe = ""
        self.position = Position()
        self.initial_balance = 0
        self.balance = 0
        self.trades: list[Trade] = []
        self.open_trade: Trade | None = None
        self.candles = 0
        self.first_open_ms = 0
        self.last_close_ms = 0
        self.first_price = 0
        self.last_price = 0
        self.exec_ids: set[str] = set()
        self.curve_ts = _Growing()
        self.curve_equity = _Growing()
        self.curve_close = _Growing()
        self.curve_qty = _Growing()
        self.refusals = RefusalCount()

    def fold(self, events: Iterable[EventBase]) -> AccountView:
        for event in events:
            self.apply(event)
        return self

    def apply(self, event: EventBase) -> None:
        kind = type(event)
        if kind is CandleClosed:
            self._on_candle(event)  # type: ignore[arg-type]
            return
        self.refusals.apply(event)
        if kind is Fill:
            self._on_fill(event)  # type: ignore[arg-type]
        elif kind is FundingPaid:
            assert isinstance(event, FundingPaid)
            if event.exec_id in self.exec_ids:
                return
            self.exec_ids.add(event.exec_id)
            apply_funding(self.position, event.amount)
            self.balance -= event.amount
            if self.open_trade is not None:
                self.open_trade.funding += event.amount
                self.open_trade.pnl -= event.amount
        elif kind is PositionDrift:
            assert isinstance(event, PositionDrift)
            if event.adopt:  # the venue's position becomes the account's (no PnL booked)
                self.position.qty = event.venue_qty
                self.position.entry_value = event.venue_entry_value if event.venue_qty else 0
        elif kind is Liquidated:
            assert isinstance(event, Liquidated)
            self._trade_fill(event.exec_id, event.ts, event.side, event.qty, event.price, event.fee)
        elif kind is SessionStarted:
            assert isinstance(event, SessionStarted)
            self.started = event
            self.instrument = Instrument(event.instrument)
            self.timeframe = event.timeframe
            self.initial_balance = self.balance = event.initial_balance

    def _on_candle(self, c: CandleClosed) -> None:
        """Mark the account at the close (the hot path of a backtest: kept inline)."""
        self.refusals.step_intent = -1  # a candle is an input: a new step begins
        if c.timeframe != self.timeframe or self.instrument is None:
            return
        if self.candles == 0:
            self.first_open_ms = c.open_ms
            self.first_price = c.open
        self.candles += 1
        self.last_close_ms = c.close_ms
        close = self.last_price = c.close
        pos = self.position
        q = pos.qty
        equity = self.balance
        if q:
            value = (q if q > 0 else -q) * close * self.instrument.notional_unit
            equity += value - pos.entry_value if q > 0 else pos.entry_value - value
        self.curve_ts.push(c.close_ms)
        self.curve_equity.push(equity)
        self.curve_close.push(close)
        self.curve_qty.push(q)

    def mark_many(self, close_ms: Sequence[int], close: Sequence[int]) -> None:
        """``_on_candle`` for a run of execution candles with no other event among them,
        in bulk (``replay.fastpath``); ``tests/test_fast_backtest.py`` holds the two equal."""
        n = len(close)
        if n == 0:
            return
        if self.candles == 0 or self.instrument is None:
            raise ValueError("mark_many continues a curve: the first candle goes through apply")
        self.refusals.step_intent = -1
        self.candles += n
        self.last_close_ms = close_ms[-1]
        self.last_price = close[-1]
        pos = self.position
        q = pos.qty
        self.curve_ts.data.extend(close_ms)
        self.curve_close.data.extend(close)
        self.curve_qty.data.extend(array("q", [q]) * n)
        equity = self.curve_equity.data
        if q == 0:
            equity.extend(array("q", [self.balance]) * n)
            return
        k = (q if q > 0 else -q) * self.instrument.notional_unit
        if q > 0:
            b = self.balance - pos.entry_value
            equity.extend([c * k + b for c in close])
        else:
            b = self.balance + pos.entry_value
            equity.extend([b - c * k for c in close])

    def _on_fill(self, f: Fill) -> None:
        self._trade_fill(f.exec_id, f.ts, f.side, f.qty, f.price, f.fee)

    def _trade_fill(
        self, exec_id: str, ts: int, side: str, lots: int, ticks: int, fee: int
    ) -> None:
        if exec_id in self.exec_ids or self.instrument is None:
            return
        self.exec_ids.add(exec_id)
        unit = self.instrument.notional_unit
        before = self.position.qty
        realized = apply_fill(self.position, side, lots, ticks, fee, unit)
        self.balance += realized - fee
        after = self.position.qty
        signed = lots if side == BUY else -lots
        trade = self.open_trade
        if trade is None:
            trade = self._open(ts, after)
        # The part of this fill that closes the current trade, and any remainder (a flip).
        closing = min(lots, abs(before)) if before and (before > 0) != (signed > 0) else 0
        opening = lots - closing
        share_fee_close = fee * closing // lots if lots else 0
        if closing:
            trade._exit_value += ticks * closing
            trade._exit_lots += closing
            trade.pnl += realized - share_fee_close
            trade.fees += share_fee_close
            trade.fills += 1
            if after == 0 or (after > 0) != (before > 0):
                self._close(trade, ts)
                trade = self._open(ts, after) if after else None
        if opening and trade is not None:
            open_fee = fee - share_fee_close
            trade._entry_value += ticks * opening
            trade._entry_lots += opening
            trade.fees += open_fee
            trade.pnl -= open_fee
            trade.fills += 1
            trade.qty = max(trade.qty, abs(after))

    def _open(self, ts: int, qty: int) -> Trade:
        self.open_trade = Trade(side="long" if qty > 0 else "short", entry_ts=ts)
        return self.open_trade

    def _close(self, trade: Trade, ts: int) -> None:
        trade.exit_ts = ts
        trade.entry_price = trade._entry_value / trade._entry_lots if trade._entry_lots else 0.0
        trade.exit_price = trade._exit_value / trade._exit_lots if trade._exit_lots else 0.0
        self.trades.append(trade)
        self.open_trade = None

    @property
    def equity(self) -> int:
        """Equity at the last candle close."""
        return self.curve_equity.data[-1] if self.curve_equity.data else 0

    @property
    def fees_paid(self) -> int:
        return self.position.fees

    @property
    def funding_paid(self) -> int:
        return self.position.funding
