"""The account as the log tells it: position, balance, closed trades and the equity curve.

One ``AccountView`` folds a session's events (inputs and derived alike) into the read
models a report needs. It never talks to the engine: it folds its own
``engine.book.Book`` from the log -- the engine's rules, no strategy -- so a fill the
engine refused (a duplicate, an order this session never placed) counts nowhere, and
a report of a live session and of a backtest are computed the same way.

* Closed trades are round trips: a trade opens when the position leaves zero and
  closes when it returns to zero; a flip closes one trade and opens the next.
* The equity curve has one point per execution-timeframe candle close: the book's
  ``equity`` marked at that close, kept beside the candle's open, high, low and volume
  (the report draws the candles from it; no second read of the log).
* Every fill that moves the position is a ``Mark`` (entry, add, reduce, exit), and each
  trade names the orders that opened and closed it; ``story`` (``projections.trade_story``)
  says what those orders were for.
* ``refusals`` counts what the session refused (``projections.refusals``): every
  event but a candle goes to it.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from operator import truediv  # int / int rounded once, as Python does, also under mypyc
from typing import Any, Final

import msgspec
import numpy as np

from engine.book import Book
from engine.events import (
    BUY,
    CandleClosed,
    EventBase,
    Fill,
    FundingPaid,
    Liquidated,
    SessionStarted,
)
from engine.instrument import Instrument
from engine.orders import TransitionError
from engine.positions import Position
from projections.refusals import RefusalCount
from projections.trade_story import LIQUIDATION, Mark, TradeStory


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
    opened_by: str = ""  # client id of the order whose fill opened the trade
    closed_by: str = ""  # client id of the order whose fill closed it (LIQUIDATION: the venue)
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


#: Columns of the per-candle curve, in the order ``_on_candle`` appends them.
CURVE_COLUMNS: tuple[str, ...] = ("ts", "equity", "close", "qty", "open", "high", "low", "volume")


class _Column:
    """One column of the curve, as numpy on demand (``view.curve_equity.array()``)."""

    __slots__ = ("_data", "_col")

    def __init__(self, data: array, col: int) -> None:
        self._data = data
        self._col = col

    def array(self) -> np.ndarray:
        if not self._data:
            return np.zeros(0, np.int64)
        rows = np.frombuffer(self._data, dtype=np.int64).reshape(-1, len(CURVE_COLUMNS))
        # A copy: a live view would forbid further appends (BufferError).
        return rows[:, self._col].copy()


class _BulkCurve:
    """The curve of a run of candles given as columns, kept as the points where the book
    changed (``AccountView.bulk_curve``) and written as rows in bulk at the end."""

    __slots__ = ("base", "columns", "dirty", "points")

    _ROWS: Final = 65_536  # rows built per numpy pass (bounds the scratch memory)

    def __init__(self, base: int, columns: tuple[np.ndarray, ...]) -> None:
        self.base = base  # the curve's candle count when the columns start
        self.columns = columns  # close_ms, open, high, low, close, volume
        self.dirty = False
        self.points = array("q")  # (candle, balance, qty, entry) after one another

    def note(self, candle: int, book: Book) -> None:
        """The book as it stands marks candle ``candle`` and the ones after it."""
        pos = book.position
        self.points.extend((candle, book.balance, pos.qty, pos.entry_value))
        self.dirty = False

    def write(self, end: int, notional_unit: int, curve: array) -> None:
        """Append the rows of candles ``base`` .. ``end - 1`` to ``curve``: the equity is
        ``Book.equity`` at each close in exact integers (the same formula), which under
        one point is ``balance - entry + qty * unit * close`` (long; ``+ entry`` short)
        while ``qty`` is not 0 and the close is positive, else ``balance``."""
        points = np.frombuffer(self.points, np.int64).reshape(-1, 4)
        at, balance, qty, entry = points.T
        n = end - self.base
        # per point: equity = fixed + slope * close (slope 0 when flat)
        slope = qty * notional_unit
        fixed = balance - np.where(qty > 0, entry, 0) + np.where(qty < 0, entry, 0)
        # the point in force at each candle: the last one noted at or before it
        point = np.repeat(np.arange(len(at), dtype=np.int32), np.diff(np.append(at, end)))
        close_ms, open_, high, low, close, volume = self.columns
        rows = np.empty((min(n, self._ROWS), len(CURVE_COLUMNS)), np.int64)
        for lo in range(0, n, self._ROWS):
            hi = min(n, lo + self._ROWS)
            k = point[lo:hi]
            out = rows[: hi - lo]
            c = out[:, 2]
            c[:] = close[lo:hi]
            q = out[:, 3]
            np.take(qty, k, out=q)
            equity = out[:, 1]
            np.take(slope, k, out=equity)
            equity *= c
            equity += fixed[k]
            bad = c <= 0  # no mark: the book's equity is its balance
            if bad.any():
                equity[bad] = balance[k[bad]]
            out[:, 0] = close_ms[lo:hi]
            for col, src in ((4, open_), (5, high), (6, low), (7, volume)):
                out[:, col] = src[lo:hi]
            curve.frombytes(out.data.cast("B"))  # no copy to bytes first


class AccountView:
    """Folds events into position, balance, trades and the equity curve."""

    def __init__(self) -> None:
        self.started: SessionStarted | None = None
        self.instrument: Instrument | None = None
        self.timeframe = ""
        self.book: Book | None = None
        self.initial_balance = 0
        self.trades: list[Trade] = []
        self.open_trade: Trade | None = None
        self.candles = 0
        self.first_open_ms = 0
        self.last_close_ms = 0
        self.first_price = 0
        self.last_price = 0
        # One int64 row per candle (``CURVE_COLUMNS``): one ``array('q').extend`` per candle
        # costs less than one append per column.
        self.curve = array("q")
        self._curve_extend = self.curve.extend
        cols = {name: _Column(self.curve, i) for i, name in enumerate(CURVE_COLUMNS)}
        self.curve_ts, self.curve_equity, self.curve_close, self.curve_qty = (
            cols["ts"],
            cols["equity"],
            cols["close"],
            cols["qty"],
        )
        self.curve_open, self.curve_high, self.curve_low, self.curve_volume = (
            cols["open"],
            cols["high"],
            cols["low"],
            cols["volume"],
        )
        self.marks: list[Mark] = []
        self.story = TradeStory()
        self.refusals = RefusalCount()
        self._bulk: _BulkCurve | None = None  # bulk_curve .. end_bulk

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
        self.story.apply(event)
        if self._bulk is not None:
            self._bulk.dirty = True  # the book may change: the next candle notes it
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)
        elif self.book is not None:
            self.book.apply(event)  # orders, commands, an adopted drift: the engine's rules

    def _on_started(self, event: SessionStarted) -> None:
        self.started = event
        self.instrument = Instrument(event.instrument)
        self.timeframe = event.timeframe
        self.initial_balance = event.initial_balance
        self.book = Book.of_session(event)

    def _on_funding(self, event: FundingPaid) -> None:
        book = self.book
        if book is None or book.funding(event) is not None:
            return
        if self.open_trade is not None:
            self.open_trade.funding += event.amount
            self.open_trade.pnl -= event.amount

    def _on_liquidated(self, event: Liquidated) -> None:
        book = self.book
        if book is not None:
            self._booked(
                event.ts, event.side, event.qty, event.price, event.fee, book, event, LIQUIDATION
            )

    @property
    def position(self) -> Position:
        return self.book.position if self.book is not None else Position()

    @property
    def balance(self) -> int:
        return self.book.balance if self.book is not None else self.initial_balance

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
        book = self.book
        assert book is not None
        book.mark(c.symbol, close)
        bulk = self._bulk
        if bulk is not None:
            if bulk.dirty:
                bulk.note(self.candles - 1, book)
            return
        self._curve_extend(
            (c.close_ms, book.equity(), close, book.position.qty, c.open, c.high, c.low, c.volume)
        )

    def bulk_curve(
        self,
        close_ms: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> None:
        """Write the curve in bulk from here on (``replay.fastpath``): the next candles are
        these columns' rows from index ``self.candles`` on, in order; ``_on_candle`` and
        ``mark_quiet`` then only note where the book changed, and ``end_bulk`` writes
        the rows. ``tests/test_fast_backtest.py`` holds the rows equal to ``apply``'s."""
        if self.instrument is None or self.book is None:
            raise ValueError("bulk_curve needs the session's SessionStarted first")
        self._bulk = _BulkCurve(self.candles, (close_ms, open_, high, low, close, volume))
        self._bulk.note(self.candles, self.book)

    def mark_quiet(self, n: int, close_ms: int, close: int) -> None:
        """``_on_candle`` for the next ``n`` candles of ``bulk_curve``'s columns, with no
        other event among them (the last one closes at ``close_ms``, at ``close``)."""
        bulk, book = self._bulk, self.book
        if bulk is None or book is None or n <= 0:
            raise ValueError("mark_quiet continues a bulk curve (bulk_curve first)")
        if self.candles == 0:
            raise ValueError("mark_quiet continues a curve: the first candle goes through apply")
        if bulk.dirty:
            bulk.note(self.candles, book)
        self.refusals.step_intent = -1
        self.candles += n
        self.last_close_ms = close_ms
        self.last_price = close
        book.mark(book.symbol, close)

    def end_bulk(self) -> None:
        """Write the curve rows of every candle since ``bulk_curve`` (then per candle again)."""
        bulk, self._bulk = self._bulk, None
        if bulk is None or self.instrument is None:
            return
        bulk.write(self.candles, self.instrument.notional_unit, self.curve)

    def _on_fill(self, f: Fill) -> None:
        if self.book is not None:
            self._booked(f.ts, f.side, f.qty, f.price, f.fee, self.book, f, f.client_id)

    def _booked(
        self,
        ts: int,
        side: str,
        lots: int,
        ticks: int,
        fee: int,
        book: Book,
        ev: Fill | Liquidated,
        client_id: str,
    ) -> None:
        """Fold an execution into the book; a trade row only if the book took it."""
        pos = book.position
        before, realized_before = pos.qty, pos.realized
        res = book.fill(ev) if type(ev) is Fill else book.liquidation(ev)  # type: ignore[arg-type]
        if isinstance(res, TransitionError):
            return
        realized = pos.realized - realized_before
        after = pos.qty
        signed = lots if side == BUY else -lots
        trade = self.open_trade
        if trade is None:
            trade = self._open(ts, after, client_id)
        # The part of this fill that closes the current trade, and any remainder (a flip).
        closing = min(lots, abs(before)) if before and (before > 0) != (signed > 0) else 0
        opening = lots - closing
        self.marks.append(Mark(ts, ticks, lots, _mark_kind(before, after), client_id))
        share_fee_close = fee * closing // lots if lots else 0
        if closing:
            trade._exit_value += ticks * closing
            trade._exit_lots += closing
            trade.pnl += realized - share_fee_close
            trade.fees += share_fee_close
            trade.fills += 1
            if after == 0 or (after > 0) != (before > 0):
                self._close(trade, ts, client_id)
                trade = self._open(ts, after, client_id) if after else None
        if opening and trade is not None:
            open_fee = fee - share_fee_close
            trade._entry_value += ticks * opening
            trade._entry_lots += opening
            trade.fees += open_fee
            trade.pnl -= open_fee
            trade.fills += 1
            trade.qty = max(trade.qty, abs(after))

    def _open(self, ts: int, qty: int, client_id: str) -> Trade:
        self.open_trade = Trade(
            side="long" if qty > 0 else "short", entry_ts=ts, opened_by=client_id
        )
        return self.open_trade

    def _close(self, trade: Trade, ts: int, client_id: str) -> None:
        trade.exit_ts = ts
        trade.closed_by = client_id
        trade.entry_price = (
            truediv(trade._entry_value, trade._entry_lots) if trade._entry_lots else 0.0
        )
        trade.exit_price = truediv(trade._exit_value, trade._exit_lots) if trade._exit_lots else 0.0
        self.trades.append(trade)
        self.open_trade = None

    @property
    def equity(self) -> int:
        """Equity at the last candle close."""
        return self.curve[-len(CURVE_COLUMNS) + 1] if self.curve else 0

    @property
    def fees_paid(self) -> int:
        return self.position.fees

    @property
    def funding_paid(self) -> int:
        return self.position.funding


#: The events whose effect on the account is more than the book's own rules.
_HANDLERS: Final[dict[type, Callable[[AccountView, Any], None]]] = {
    Fill: AccountView._on_fill,
    FundingPaid: AccountView._on_funding,
    Liquidated: AccountView._on_liquidated,
    SessionStarted: AccountView._on_started,
}


def _mark_kind(before: int, after: int) -> str:
    """What a fill did to the position: ``entry`` (from flat), ``flip`` (through zero),
    ``add``, ``reduce`` or ``exit`` (back to flat)."""
    if before == 0:
        return "entry"
    if after != 0 and (after > 0) != (before > 0):
        return "flip"
    if after == 0:
        return "exit"
    return "add" if abs(after) > abs(before) else "reduce"
