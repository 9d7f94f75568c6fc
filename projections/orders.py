"""Orders read model: every order of a session by client id and venue id, folded from the log.

It applies the engine's own order state machine (``engine.orders.OrderBook``) to the
same events, so it accepts and refuses exactly what the engine did: a refused event
(duplicate execution, overfill, wrong state) changes nothing here either.
"""

from __future__ import annotations

from engine.events import (
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import Instrument
from engine.orders import ATTACHED_SUFFIX, Order, OrderBook, TransitionError, attached_id

_VENUE_EVENTS = (
    OrderAccepted,
    OrderRejected,
    OrderTriggered,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
)


class OrdersView:
    """All orders (open and closed) of one session; feed it every event with ``apply``."""

    __slots__ = ("book", "by_client_id", "by_venue_id", "notional_unit", "refused")

    def __init__(self, notional_unit: int = 1) -> None:
        self.book = OrderBook(max_closed=None)
        self.by_client_id: dict[str, Order] = {}  # in submission order
        self.by_venue_id: dict[str, Order] = {}
        self.refused: list[TransitionError] = []
        self.notional_unit = notional_unit  # set from SessionStarted's instrument

    def apply(self, event: object) -> Order | None:
        """Fold one event (input or derived); return the order it changed, if any."""
        tp = type(event)
        if tp is SubmitOrder:
            assert isinstance(event, SubmitOrder)
            order = self.book.submit(event)
            if order is not None:
                self.by_client_id[order.client_id] = order
            return order
        if tp is Fill:
            assert isinstance(event, Fill)
            res = self.book.fill(event, self.notional_unit)
            if not isinstance(res, TransitionError) and (res.take_profit or res.stop_loss):
                self._adopt_armed(res.client_id)
        elif tp in _VENUE_EVENTS:
            res = self.book.venue_event(event)  # type: ignore[arg-type]
        else:
            if tp is SessionStarted:
                assert isinstance(event, SessionStarted)
                self.notional_unit = Instrument(event.instrument).notional_unit
            return None
        if isinstance(res, TransitionError):
            self.refused.append(res)
            return None
        if res.venue_id:
            self.by_venue_id[res.venue_id] = res
        return res

    def _adopt_armed(self, parent: str) -> None:
        """The stop / target the venue armed from ``parent``'s attached levels (the book
        registered them at the fill) are orders of this session too."""
        for purpose in ATTACHED_SUFFIX:
            order = self.book.open.get(attached_id(parent, purpose))
            if order is not None and order.client_id not in self.by_client_id:
                self.by_client_id[order.client_id] = order

    def open(self) -> list[Order]:
        """Orders still working (Requested, New, PartiallyFilled, Untriggered, Triggered)."""
        return list(self.book.open.values())

    def get(self, client_id: str) -> Order | None:
        return self.by_client_id.get(client_id)
