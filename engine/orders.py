"""The order state machine: one table of legal transitions and an ``OrderBook`` that folds
venue events into orders, refusing (never applying) anything illegal.

Statuses follow Bybit v5 plus the engine's own ``Requested`` (sent, not acknowledged)::

    Requested -> New | Untriggered (OrderAccepted)      Requested -> Rejected (OrderRejected)
    Untriggered -> Triggered (OrderTriggered)           open -> amended values (OrderAmended)
    Requested | New | PartiallyFilled | Triggered -> PartiallyFilled | Filled   (Fill)
    open -> Cancelled | PartiallyFilledCanceled | Deactivated (OrderCancelled / OrderExpired)

A fill may arrive before the acceptance (venue streams are not ordered across
topics), so ``Requested`` accepts a fill of a plain order; a conditional order must
be triggered first. PartiallyFilled / Filled are derived from the cumulative quantity.
Every execution id is remembered (membership only, never iterated), so a repeated
fill is refused by construction: it can never be counted twice.
"""

from __future__ import annotations

from typing import Final

import msgspec

from engine.events import (
    BUY,
    CANCELLED,
    DEACTIVATED,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    PARTIALLY_FILLED_CANCELED,
    REJECTED,
    REQUESTED,
    SELL,
    TRIGGERED,
    UNTRIGGERED,
    Fill,
    FundingPaid,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    SubmitOrder,
)


class Order(msgspec.Struct, gc=False):
    """One order as the engine knows it (mutable; owned by an ``OrderBook``)."""

    client_id: str
    symbol: str
    side: str
    order_type: str
    qty: int
    price: int = 0
    trigger_price: int = 0
    trigger_direction: int = 0
    time_in_force: str = "GTC"
    reduce_only: bool = False
    purpose: str = ""
    status: str = REQUESTED
    venue_id: str = ""
    filled: int = 0  # cumulative lots
    filled_value: int = 0  # cumulative notional, money
    fees: int = 0  # cumulative fees, money
    created_ts: int = 0
    updated_ts: int = 0
    cancel_pending: bool = False  # a CancelOrder was sent and not yet answered
    amend_pending: bool = False  # an AmendOrder was sent and not yet answered
    # A take-profit / stop-loss the venue armed from an order's attached levels: the client
    # id of that (parent) order. The venue keeps its size at the whole position (Full).
    parent: str = ""
    take_profit: int = 0  # attached levels (ticks) the venue arms when this order fills
    stop_loss: int = 0

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN


#: The largest notional (money units, ~11.5e9 USDT) one execution may carry: a guard
#: against garbage that would overflow the snapshot's 64-bit integers.
MAX_NOTIONAL: Final = 2**60

_OPEN: Final = frozenset((REQUESTED, NEW, PARTIALLY_FILLED, UNTRIGGERED, TRIGGERED))
_ANY_OPEN: Final = (REQUESTED, NEW, PARTIALLY_FILLED, UNTRIGGERED, TRIGGERED)

#: Event name -> statuses in which that event is legal. Anything else is refused.
TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    "OrderAccepted": (REQUESTED,),
    "OrderRejected": (REQUESTED,),
    "OrderTriggered": (UNTRIGGERED,),
    "OrderAmended": (NEW, PARTIALLY_FILLED, UNTRIGGERED, TRIGGERED),
    "OrderCancelled": _ANY_OPEN,
    "OrderExpired": _ANY_OPEN,
    "Fill": (REQUESTED, NEW, PARTIALLY_FILLED, TRIGGERED),
}

VenueOrderEvent = (
    OrderAccepted | OrderRejected | OrderTriggered | OrderAmended | OrderCancelled | OrderExpired
)


class TransitionError(msgspec.Struct, frozen=True):
    """Why an event was refused: what the engine reports as ``TransitionRejected``."""

    client_id: str
    event: str
    state: str  # the order's status, or "" for an unknown order
    reason: str


def new_order(cmd: SubmitOrder) -> Order:
    """The ``Requested`` order a ``SubmitOrder`` command creates."""
    return Order(
        client_id=cmd.client_id,
        symbol=cmd.symbol,
        side=cmd.side,
        order_type=cmd.order_type,
        qty=cmd.qty,
        price=cmd.price,
        trigger_price=cmd.trigger_price,
        trigger_direction=cmd.trigger_direction,
        time_in_force=cmd.time_in_force,
        reduce_only=cmd.reduce_only,
        purpose=cmd.purpose,
        created_ts=cmd.ts,
        updated_ts=cmd.ts,
        take_profit=cmd.take_profit,
        stop_loss=cmd.stop_loss,
    )


#: An attached level's purpose -> the suffix of the client id the venue gives its order.
ATTACHED_SUFFIX: Final = {"stop": "-sl", "take_profit": "-tp"}


def attached_id(parent: str, purpose: str) -> str:
    """Client id of the stop (``purpose="stop"``) or target armed from ``parent``'s
    attached levels: ``<parent>-sl`` / ``<parent>-tp`` (still <= 36 characters)."""
    return parent + ATTACHED_SUFFIX[purpose]


def armed_purpose(client_id: str) -> str:
    """``stop`` / ``take_profit`` when ``client_id`` names an armed attached level, else ""
    (the engine's own ids end in a number)."""
    for purpose, suffix in ATTACHED_SUFFIX.items():
        if client_id.endswith(suffix):
            return purpose
    return ""


def armed_side(parent_side: str, purpose: str) -> tuple[str, int]:
    """(side, trigger direction) of the order an attached level becomes: it closes the
    position ``parent_side`` opened; a long's stop triggers on a fall (2), its target on a
    rise (1), mirrored for a short."""
    long = parent_side == BUY
    falls = (purpose == "stop") == long
    return (SELL if long else BUY), (2 if falls else 1)


def armed_orders(parent: Order, lots: int, ts: int) -> list[Order]:
    """The orders ``parent``'s attached levels become when it fills ``lots`` (Requested:
    the venue's acceptance follows). Their size follows the position (the venue amends it)."""
    out = []
    for purpose, level in (("stop", parent.stop_loss), ("take_profit", parent.take_profit)):
        if level:
            side, direction = armed_side(parent.side, purpose)
            out.append(
                Order(
                    client_id=attached_id(parent.client_id, purpose),
                    symbol=parent.symbol,
                    side=side,
                    order_type="Market",
                    qty=lots,
                    trigger_price=level,
                    trigger_direction=direction,
                    reduce_only=True,
                    purpose=purpose,
                    created_ts=ts,
                    updated_ts=ts,
                    parent=parent.client_id,
                )
            )
    return out


def check_fill(order: Order, ev: Fill) -> str | None:
    """The reason ``ev`` cannot apply to ``order``, or None if it is legal."""
    if order.status not in TRANSITIONS["Fill"]:
        return f"fill in state {order.status}"
    if order.status == REQUESTED and order.trigger_price > 0:
        return "fill of an untriggered conditional order"
    if ev.qty <= 0 or ev.price <= 0:
        return f"bad fill qty={ev.qty} price={ev.price}"
    if ev.side != order.side:
        return f"fill side {ev.side} != order side {order.side}"
    if ev.symbol != order.symbol:
        return f"fill symbol {ev.symbol} != order symbol {order.symbol}"
    if order.venue_id and ev.venue_id and ev.venue_id != order.venue_id:
        return f"venue_id {ev.venue_id} != {order.venue_id}"
    if order.filled + ev.qty > order.qty:
        return f"overfill: {order.filled}+{ev.qty} > {order.qty}"
    return None


def apply_fill(order: Order, ev: Fill, notional_unit: int) -> None:
    """Apply a fill already passed by ``check_fill``."""
    order.filled += ev.qty
    order.filled_value += ev.price * ev.qty * notional_unit
    order.fees += ev.fee
    if not order.venue_id:
        order.venue_id = ev.venue_id
    order.status = FILLED if order.filled == order.qty else PARTIALLY_FILLED
    order.updated_ts = ev.ts


def _end_status(order: Order) -> str:
    if order.status == UNTRIGGERED:
        return DEACTIVATED
    return PARTIALLY_FILLED_CANCELED if order.filled > 0 else CANCELLED


def transition(order: Order, ev: VenueOrderEvent) -> str | None:
    """Apply a non-fill venue event to ``order`` if legal; else return why not (unchanged)."""
    name = type(ev).__name__
    if order.status not in TRANSITIONS[name]:
        return f"{name} in state {order.status}"
    if type(ev) is OrderAccepted:
        if ev.status not in (NEW, UNTRIGGERED):
            return f"accepted with unknown status {ev.status!r}"
        order.status = ev.status
        order.venue_id = ev.venue_id
    elif type(ev) is OrderRejected:
        order.status = REJECTED
    elif type(ev) is OrderTriggered:
        order.status = TRIGGERED
    elif type(ev) is OrderAmended:
        if ev.qty < 0 or ev.price < 0 or ev.trigger_price < 0:
            return "negative amended value"
        if ev.qty and ev.qty < order.filled:
            return f"amended qty {ev.qty} below filled {order.filled}"
        if ev.qty:
            order.qty = ev.qty
        if ev.price:
            order.price = ev.price
        if ev.trigger_price:
            order.trigger_price = ev.trigger_price
        order.amend_pending = False
        if order.filled and order.filled == order.qty:
            order.status = FILLED
    else:  # OrderCancelled | OrderExpired
        order.status = _end_status(order)
        order.cancel_pending = False
    order.updated_ts = ev.ts
    return None


class OrderBook:
    """Orders by client id plus the seen execution ids; the one place order state changes.

    ``max_closed`` bounds how many closed orders are kept (oldest dropped first, in
    insertion order) so that the engine's state -- and its checkpoint hash -- stays
    small in long sessions; ``None`` keeps every order (what projections want). An event
    for a dropped order is refused as an unknown client id, which is just as harmless.
    """

    __slots__ = ("closed", "max_closed", "open", "seen_exec")

    def __init__(self, max_closed: int | None = None) -> None:
        self.open: dict[str, Order] = {}
        self.closed: dict[str, Order] = {}
        self.seen_exec: dict[str, None] = {}  # membership only; a dict keeps insertion order
        self.max_closed = max_closed

    def get(self, client_id: str) -> Order | None:
        order = self.open.get(client_id)
        return order if order is not None else self.closed.get(client_id)

    def submit(self, cmd: SubmitOrder) -> Order | None:
        """Register the order a command creates; None if that client id is already used."""
        if cmd.client_id in self.open or cmd.client_id in self.closed:
            return None
        order = new_order(cmd)
        self.open[cmd.client_id] = order
        return order

    def register(self, order: Order) -> bool:
        """Add an order the venue created for us (an armed attached TP/SL); False if the
        client id is already used (then nothing changes)."""
        if order.client_id in self.open or order.client_id in self.closed:
            return False
        self.open[order.client_id] = order
        return True

    def seen(self, exec_id: str) -> bool:
        return exec_id in self.seen_exec

    def mark_exec(self, exec_id: str) -> bool:
        """Record an execution id; False if it was already seen (then do nothing with it)."""
        if exec_id in self.seen_exec:
            return False
        self.seen_exec[exec_id] = None
        return True

    def fill(self, ev: Fill, notional_unit: int) -> TransitionError | Order:
        """Fold a fill: the updated order, or why it was refused (and not applied)."""
        if ev.exec_id in self.seen_exec:
            order = self.get(ev.client_id)
            state = order.status if order is not None else ""
            return TransitionError(ev.client_id, "Fill", state, "duplicate exec_id")
        order = self.open.get(ev.client_id)
        if order is None:
            return self._unknown(ev.client_id, "Fill")
        reason = check_fill(order, ev)
        if reason is None and ev.price * ev.qty * notional_unit > MAX_NOTIONAL:
            reason = f"notional out of range: {ev.qty}@{ev.price}"
        if reason is not None:
            return TransitionError(ev.client_id, "Fill", order.status, reason)
        self.seen_exec[ev.exec_id] = None
        apply_fill(order, ev, notional_unit)
        if order.take_profit or order.stop_loss:
            for armed in armed_orders(order, ev.qty, ev.ts):
                self.register(armed)  # once: at the order's first fill
        if order.status == FILLED:
            self._close(order)
        return order

    def venue_event(self, ev: VenueOrderEvent) -> TransitionError | Order:
        """Fold an accept/reject/trigger/amend/cancel/expire: the order, or why refused."""
        order = self.open.get(ev.client_id)
        if order is None:
            order = self._armed_early(ev)
        if order is None:
            return self._unknown(ev.client_id, type(ev).__name__)
        reason = transition(order, ev)
        if reason is not None:
            return TransitionError(ev.client_id, type(ev).__name__, order.status, reason)
        if not order.is_open:
            self._close(order)
        return order

    def funding(self, ev: FundingPaid, symbol: str) -> TransitionError | None:
        """Check and record a funding settlement; None means: apply it to the position."""
        if ev.symbol != symbol:
            return TransitionError("", "FundingPaid", "", f"symbol {ev.symbol} != {symbol}")
        if abs(ev.amount) > MAX_NOTIONAL:
            return TransitionError("", "FundingPaid", "", f"amount out of range: {ev.amount}")
        if not self.mark_exec(ev.exec_id):
            return TransitionError("", "FundingPaid", "", "duplicate exec_id")
        return None

    def liquidation(
        self, ev: Liquidated, symbol: str, notional_unit: int = 1
    ) -> TransitionError | None:
        """Check and record a liquidation; None means: apply it to the position."""
        bad = ev.qty <= 0 or ev.price <= 0 or ev.price * ev.qty * notional_unit > MAX_NOTIONAL
        if ev.symbol != symbol or ev.side not in (BUY, SELL) or bad:
            why = f"bad liquidation {ev.symbol} {ev.side} {ev.qty}@{ev.price}"
            return TransitionError("", "Liquidated", "", why)
        if not self.mark_exec(ev.exec_id):
            return TransitionError("", "Liquidated", "", "duplicate exec_id")
        return None

    def _armed_early(self, ev: VenueOrderEvent) -> Order | None:
        """An armed TP/SL's acceptance that arrived before its parent's fill (live streams
        are not ordered across topics): register it from the parent (its size: the parent's
        qty until the venue amends it to the position's)."""
        purpose = armed_purpose(ev.client_id)
        if type(ev) is not OrderAccepted or not purpose:
            return None
        parent = self.get(ev.client_id[: -len(ATTACHED_SUFFIX[purpose])])
        if parent is None or not (parent.stop_loss if purpose == "stop" else parent.take_profit):
            return None
        for armed in armed_orders(parent, parent.qty, ev.ts):
            if armed.client_id == ev.client_id and self.register(armed):
                return armed
        return None

    def _unknown(self, client_id: str, event: str) -> TransitionError:
        closed = self.closed.get(client_id)
        if closed is not None:
            return TransitionError(client_id, event, closed.status, f"order is {closed.status}")
        return TransitionError(client_id, event, "", "unknown client_id")

    def _close(self, order: Order) -> None:
        del self.open[order.client_id]
        closed = self.closed
        closed[order.client_id] = order
        if self.max_closed is not None and len(closed) > self.max_closed:
            del closed[next(iter(closed))]


def opposite(side: str) -> str:
    return SELL if side == BUY else BUY
