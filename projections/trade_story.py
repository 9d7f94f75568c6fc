"""Why each trade opened and closed, and where its stops and targets rested.

``TradeStory`` folds a session's derived events (``AccountView`` hands it every event but
candles) into what the log says about each order the engine sent:

* the block whose intent sent it (the ``IntentEmitted`` of the same step) and its
  ``purpose`` (entry, exit, stop, take_profit, ...);
* whether a stop was trailing (a ``trail_stop`` intent was emitted while it rested);
* ``resting``: every stop and take-profit level as a segment in time, from the order's
  submission (or an amend that moved it) to its fill, cancel, expiry, rejection or the
  next amend; a segment still open at the end has ``end_ts == 0``.

``close_reason`` turns an order into the words of the trade table: ``block NAME`` for an
order a block sent, ``stop``, ``trailing stop``, ``take-profit``, ``liquidation``, and
``end of data`` for a trade still open when the log ends. ``excursions`` computes each
trade's MAE and MFE in bulk from the candles (see its doc for the convention).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec
import numpy as np

from engine.events import (
    DERIVED_TYPES,
    EventBase,
    Fill,
    IntentEmitted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    SubmitOrder,
)

#: The ``closed_by`` of a trade the venue liquidated (no order of the session did it).
LIQUIDATION: Final = "<liquidation>"
END_OF_DATA: Final = "end of data"
_PROTECTIVE: Final = ("stop", "take_profit")
_DERIVED: Final = frozenset(DERIVED_TYPES)


class Mark(msgspec.Struct, array_like=True, gc=False):
    """One fill that moved the position: price in ticks, lots, what it did (entry, flip,
    add, reduce, exit) and the order it belongs to."""

    ts: int
    price: int
    lots: int
    kind: str
    client_id: str


class OrderNote(msgspec.Struct, gc=False):
    purpose: str
    block: str
    qty: int
    filled: int = 0
    trailing: bool = False


class Resting(msgspec.Struct, gc=False):
    """A stop or take-profit level (ticks) resting from ``start_ts`` to ``end_ts``."""

    kind: str  # "stop" | "take_profit"
    price: int
    start_ts: int
    end_ts: int = 0
    client_id: str = ""


class TradeStory:
    """Folds order commands and answers into notes per client id and resting levels."""

    __slots__ = ("notes", "resting", "_open", "_block")

    def __init__(self) -> None:
        self.notes: dict[str, OrderNote] = {}
        self.resting: list[Resting] = []
        self._open: dict[str, int] = {}  # client id -> index of its open segment
        self._block = ""

    def apply(self, event: EventBase) -> None:
        kind = type(event)
        if kind not in _DERIVED:
            self._block = ""  # an input starts a new step: its orders are no intent's
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)

    def _on_intent(self, event: IntentEmitted) -> None:
        self._block = event.intent.block
        if event.intent.action == "trail_stop":
            for cid in self._open:
                note = self.notes[cid]
                if note.purpose == "stop":
                    note.trailing = True

    def _on_submit(self, event: SubmitOrder) -> None:
        note = OrderNote(event.purpose, self._block, event.qty)
        self.notes[event.client_id] = note
        if event.purpose in _PROTECTIVE:
            level = event.trigger_price or event.price
            self._rest(event.client_id, event.purpose, level, event.ts)

    def _on_fill(self, event: Fill) -> None:
        got = self.notes.get(event.client_id)
        if got is not None:
            got.filled += event.qty
            if got.filled >= got.qty:
                self._end(event.client_id, event.ts)

    def _on_amended(self, event: OrderAmended) -> None:
        moved = self.notes.get(event.client_id)
        if moved is not None:
            moved.qty = event.qty or moved.qty
            level = event.trigger_price or event.price
            if level and event.client_id in self._open:
                self._end(event.client_id, event.ts)
                self._rest(event.client_id, moved.purpose, level, event.ts)

    def _on_ended(self, event: OrderCancelled | OrderExpired | OrderRejected) -> None:
        self._end(event.client_id, event.ts)

    def _rest(self, client_id: str, kind: str, level: int, ts: int) -> None:
        if level <= 0:
            return
        self._open[client_id] = len(self.resting)
        self.resting.append(Resting(kind, level, ts, client_id=client_id))

    def _end(self, client_id: str, ts: int) -> None:
        i = self._open.pop(client_id, None)
        if i is not None:
            self.resting[i].end_ts = ts

    def block_of(self, client_id: str) -> str:
        note = self.notes.get(client_id)
        return note.block if note is not None else ""

    def close_reason(self, client_id: str) -> str:
        """The trade table's words for the order ``client_id`` that closed a trade."""
        if client_id == LIQUIDATION:
            return "liquidation"
        if not client_id:
            return END_OF_DATA
        note = self.notes.get(client_id)
        if note is None:
            return "venue order"  # not sent by this session's engine
        if note.purpose == "stop":
            return "trailing stop" if note.trailing else "stop"
        if note.purpose == "take_profit":
            return "take-profit"
        return f"block {note.block}" if note.block else note.purpose or "order"


#: What each kind of event tells the story (the rest tells it nothing).
_HANDLERS: Final[dict[type, Callable[[TradeStory, Any], None]]] = {
    IntentEmitted: TradeStory._on_intent,
    SubmitOrder: TradeStory._on_submit,
    Fill: TradeStory._on_fill,
    OrderAmended: TradeStory._on_amended,
    OrderCancelled: TradeStory._on_ended,
    OrderExpired: TradeStory._on_ended,
    OrderRejected: TradeStory._on_ended,
}


def excursions(
    entry_ts: np.ndarray,
    exit_ts: np.ndarray,
    entry_price: np.ndarray,
    exit_price: np.ndarray,
    long: np.ndarray,
    curve_ts: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per trade, the maximum adverse and favourable excursion in ticks per lot (MAE <= 0,
    MFE >= 0) from the average entry price.

    Convention: the extremes are taken over the entry and exit prices and the high and low
    of every candle that *closed* while the trade was open (close time after the entry fill
    and at or before the exit fill; an open trade's ``exit_ts`` is the last close). Fills
    come before their candle in the log, so the entry bar counts and the bar in which a
    trade exits does not, except through the exit price itself.
    """
    n = len(entry_ts)
    mae = np.zeros(n)
    mfe = np.zeros(n)
    if n == 0:
        return mae, mfe
    lo_i = np.searchsorted(curve_ts, entry_ts, side="right")
    hi_i = np.searchsorted(curve_ts, exit_ts, side="right")
    for k in range(n):
        a, b = int(lo_i[k]), int(hi_i[k])
        top = max(float(entry_price[k]), float(exit_price[k]))
        bottom = min(float(entry_price[k]), float(exit_price[k]))
        if b > a:
            top = max(top, float(high[a:b].max()))
            bottom = min(bottom, float(low[a:b].min()))
        if long[k]:
            mae[k], mfe[k] = bottom - entry_price[k], top - entry_price[k]
        else:
            mae[k], mfe[k] = entry_price[k] - top, entry_price[k] - bottom
    return mae, mfe
