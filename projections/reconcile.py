"""Reconciliation as one pure function: what the log knows + what the venue says -> corrections.

``reconcile(local, venue, ts=..., lookups=...)`` returns the events that, appended to
the log and folded, make the log agree with the venue:

1. executions (fills, funding, liquidations) the venue has and the log does not, as
   the venue's own events, oldest first. Their ids are the venue's execution ids, so
   reconciling twice appends nothing the second time. Only fills of orders this
   session placed are appended: an account's other trading (another session, a
   manual order) is not this session's history, and shows up as drift instead;
2. for every order the log thinks is open: an ``OrderAccepted`` if the venue has it
   but the log still says Requested; ``OrderTriggered`` if the venue has triggered
   it; ``OrderAmended`` if qty/price/trigger differ; and if the venue no longer has
   it open, its final word from ``lookups`` (the venue's answer to "what happened to
   this orderLinkId?"): cancelled, rejected, or deactivated. A Requested order the
   venue has never heard of becomes a ``ReconciliationCorrection(kind="unsent")``:
   the command is in the log but never reached the venue, and may be sent (once);
3. open orders at the venue the log does not know become ``ExternalOrder``;
4. if, after all of the above, the position still differs from the venue's, a
   ``PositionDrift`` (not repeated while the same drift stands).

The venue side is typed structurally (``VenueState``), so any snapshot with those
attributes works (``adapters.protocol.VenueSnapshot`` does) and projections never
import adapters. ``ReconcileView`` is the local side folded from a session's events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import msgspec

from engine.events import (
    BUY,
    CANCELLED,
    DEACTIVATED,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    REJECTED,
    REQUESTED,
    TRIGGERED,
    UNTRIGGERED,
    CancelOrder,
    EventBase,
    ExternalOrder,
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
    PositionSnapshot,
    ReconciliationCorrection,
    SubmitOrder,
)

_OPEN = (REQUESTED, NEW, PARTIALLY_FILLED, UNTRIGGERED, TRIGGERED)


class VenueOrder(Protocol):
    @property
    def client_id(self) -> str: ...
    @property
    def venue_id(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def qty(self) -> int: ...
    @property
    def price(self) -> int: ...
    @property
    def trigger_price(self) -> int: ...
    @property
    def status(self) -> str: ...


class VenueState(Protocol):
    @property
    def open_orders(self) -> Sequence[VenueOrder]: ...
    @property
    def positions(self) -> Sequence[PositionSnapshot]: ...
    @property
    def fills(self) -> Sequence[Fill]: ...
    @property
    def funding(self) -> Sequence[FundingPaid]: ...
    @property
    def liquidations(self) -> Sequence[Liquidated]: ...


class FinalStatus(msgspec.Struct, frozen=True):
    """The venue's answer for one orderLinkId that is no longer open."""

    status: str  # Filled | Cancelled | Rejected | Deactivated | "" (unknown to the venue)
    venue_id: str = ""
    reason: str = ""


class LocalOrder(msgspec.Struct, gc=False):
    client_id: str
    venue_id: str = ""
    status: str = REQUESTED
    side: str = BUY
    qty: int = 0
    price: int = 0
    trigger_price: int = 0
    filled: int = 0


class ViewState(msgspec.Struct):
    """A ``ReconcileView`` as plain data (a restart restores it instead of refolding)."""

    symbol: str
    orders: list[LocalOrder]
    exec_ids: list[str]
    position_qty: int
    reported_drift: int | None
    reported_unsent: list[str]
    cancel_requested: list[str]
    last_exec_ms: int = 0


class ReconcileView:
    """The log's side of reconciliation: orders, executions and position, folded from events."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.orders: dict[str, LocalOrder] = {}
        self.exec_ids: set[str] = set()
        self.position_qty = 0
        self.reported_drift: int | None = None
        self.reported_unsent: set[str] = set()
        self.cancel_requested: set[str] = set()  # open orders a CancelOrder was logged for
        self.last_exec_ms = 0  # venue time of the newest execution in the log

    def fold(self, events: Iterable[EventBase]) -> ReconcileView:
        for event in events:
            self.apply(event)
        return self

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(
            ViewState(
                self.symbol,
                list(self.orders.values()),
                sorted(self.exec_ids),
                self.position_qty,
                self.reported_drift,
                sorted(self.reported_unsent),
                sorted(self.cancel_requested),
                self.last_exec_ms,
            )
        )

    @classmethod
    def restore(cls, data: bytes) -> ReconcileView:
        st = msgspec.msgpack.decode(data, type=ViewState)
        view = cls(st.symbol)
        view.orders = {o.client_id: o for o in st.orders}
        view.exec_ids = set(st.exec_ids)
        view.position_qty = st.position_qty
        view.reported_drift = st.reported_drift
        view.reported_unsent = set(st.reported_unsent)
        view.cancel_requested = set(st.cancel_requested)
        view.last_exec_ms = st.last_exec_ms
        return view

    def open_orders(self) -> list[LocalOrder]:
        return [o for o in self.orders.values() if o.status in _OPEN]

    def apply(self, event: EventBase) -> None:
        kind = type(event)
        if kind is SubmitOrder:
            assert isinstance(event, SubmitOrder)
            if event.client_id not in self.orders:
                self.orders[event.client_id] = LocalOrder(
                    event.client_id,
                    side=event.side,
                    qty=event.qty,
                    price=event.price,
                    trigger_price=event.trigger_price,
                )
        elif kind is CancelOrder:
            assert isinstance(event, CancelOrder)
            self.cancel_requested.add(event.client_id)
        elif kind is Fill or kind is Liquidated or kind is FundingPaid:
            self._execution(event)
        elif kind is OrderAccepted:
            assert isinstance(event, OrderAccepted)
            o = self.orders.get(event.client_id)
            if o is not None and o.status == REQUESTED:
                o.venue_id, o.status = event.venue_id, event.status
        elif kind is OrderTriggered:
            assert isinstance(event, OrderTriggered)
            o = self.orders.get(event.client_id)
            if o is not None and o.status == UNTRIGGERED:
                o.status = TRIGGERED
        elif kind is OrderAmended:
            assert isinstance(event, OrderAmended)
            o = self.orders.get(event.client_id)
            if o is not None:
                o.qty = event.qty or o.qty
                o.price = event.price or o.price
                o.trigger_price = event.trigger_price or o.trigger_price
        elif kind is OrderCancelled or kind is OrderExpired:
            o = self.orders.get(event.client_id)  # type: ignore[attr-defined]
            if o is not None and o.status in _OPEN:
                o.status = DEACTIVATED if o.status == UNTRIGGERED else CANCELLED
        elif kind is OrderRejected:
            assert isinstance(event, OrderRejected)
            o = self.orders.get(event.client_id)
            if o is not None and o.status in _OPEN:
                o.status = REJECTED
        elif kind is PositionDrift:
            assert isinstance(event, PositionDrift)
            self.reported_drift = event.venue_qty
            if event.adopt:
                self.position_qty = event.venue_qty
        elif kind is ReconciliationCorrection:
            assert isinstance(event, ReconciliationCorrection)
            if event.kind == "unsent":
                self.reported_unsent.add(event.client_id)

    def _execution(self, event: EventBase) -> None:
        exec_id: str = event.exec_id  # type: ignore[attr-defined]
        if exec_id in self.exec_ids:
            return
        self.exec_ids.add(exec_id)
        self.last_exec_ms = max(self.last_exec_ms, event.ts)
        if isinstance(event, FundingPaid):
            return
        assert isinstance(event, Fill | Liquidated)
        signed = event.qty if event.side == BUY else -event.qty
        self.position_qty += signed
        if isinstance(event, Fill):
            o = self.orders.get(event.client_id)
            if o is not None:
                o.filled += event.qty
                if o.filled >= o.qty:
                    o.status = FILLED
                elif o.status in (NEW, TRIGGERED, REQUESTED, UNTRIGGERED):
                    o.status = PARTIALLY_FILLED


def reconcile(
    local: ReconcileView,
    venue: VenueState,
    *,
    ts: int,
    lookups: Mapping[str, FinalStatus] | None = None,
    adopt_drift: bool = False,
) -> list[EventBase]:
    """The correction events that bring ``local`` to the venue's truth (see module doc)."""
    out: list[EventBase] = []
    qty = local.position_qty
    seen: set[str] = set()
    accepted: set[str] = set()
    executions: list[Fill | FundingPaid | Liquidated] = [*venue.fills, *venue.funding]
    executions += venue.liquidations
    executions.sort(key=lambda e: (e.ts, e.exec_id))
    for ex in executions:
        if ex.exec_id in local.exec_ids or ex.exec_id in seen:
            continue
        if isinstance(ex, Fill) and ex.client_id not in local.orders:
            continue  # another session's or a manual order: not ours to append (see drift)
        if not isinstance(ex, Fill) and not local.exec_ids and not seen:
            continue  # funding/liquidation before this session ever traded: not ours
        seen.add(ex.exec_id)
        if isinstance(ex, Fill):
            lo = local.orders.get(ex.client_id)
            if lo is not None and lo.status == REQUESTED and ex.client_id not in accepted:
                # The acknowledgement was lost too: restore it before the fill.
                accepted.add(ex.client_id)
                out.append(OrderAccepted(ex.ts, ex.client_id, ex.venue_id))
        out.append(ex)
        if not isinstance(ex, FundingPaid) and ex.symbol == local.symbol:
            qty += ex.qty if ex.side == BUY else -ex.qty

    filled_now: dict[str, int] = {}
    for event in out:
        if isinstance(event, Fill):
            filled_now[event.client_id] = filled_now.get(event.client_id, 0) + event.qty
    at_venue = {o.client_id: o for o in venue.open_orders if o.client_id}
    answers = lookups or {}
    for lo in local.open_orders():
        cid = lo.client_id
        vo = at_venue.get(cid)
        if vo is not None:
            if lo.status == REQUESTED and cid not in accepted:
                status = UNTRIGGERED if vo.status == UNTRIGGERED else NEW
                out.append(OrderAccepted(ts, cid, vo.venue_id, status=status))
            elif lo.status == UNTRIGGERED and vo.status not in (UNTRIGGERED, ""):
                out.append(OrderTriggered(ts, cid, vo.venue_id))
            if (vo.qty, vo.price, vo.trigger_price) != (lo.qty, lo.price, lo.trigger_price):
                out.append(OrderAmended(ts, cid, vo.venue_id, vo.qty, vo.price, vo.trigger_price))
            continue
        if lo.filled + filled_now.get(cid, 0) >= lo.qty:
            continue  # the missing fills above close it
        final = answers.get(cid)
        if final is None or final.status == "":
            if lo.status == REQUESTED and cid not in accepted:
                if cid not in local.reported_unsent:
                    out.append(ReconciliationCorrection(ts, "unsent", client_id=cid))
            else:
                out.append(OrderCancelled(ts, cid, lo.venue_id, reason="VanishedAtVenue"))
        elif final.status == REJECTED:
            out.append(OrderRejected(ts, cid, final.reason or "rejected at venue"))
        elif final.status == FILLED:
            # Filled at the venue but executions are missing from the snapshot: say so.
            out.append(ReconciliationCorrection(ts, "fills_missing", cid, final.venue_id))
        else:
            out.append(OrderCancelled(ts, cid, final.venue_id or lo.venue_id, final.reason))

    for vo in venue.open_orders:
        if not vo.client_id or vo.client_id not in local.orders:
            out.append(
                ExternalOrder(ts, vo.venue_id, vo.client_id, vo.side, vo.qty, vo.price, vo.status)
            )

    mine = [p for p in venue.positions if p.symbol == local.symbol]
    venue_qty = sum(p.qty for p in mine)
    if venue_qty != qty and local.reported_drift != venue_qty:
        venue_value = sum(p.entry_value for p in mine)
        out.append(
            PositionDrift(ts, local.symbol, qty, venue_qty, 0, venue_value, adopt=adopt_drift)
        )
    return out
