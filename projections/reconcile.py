"""Reconciliation as one pure function: what the log knows + what the venue says -> corrections.

``reconcile(local, venue, ts=..., lookups=...)`` returns the events that, appended to
the log and folded, make the log agree with the venue:

1. executions (fills, funding, liquidations) the venue has and the log does not, as
   the venue's own events, oldest first. Their ids are the venue's execution ids, so
   reconciling twice appends nothing the second time. Only fills of orders this
   session placed are appended as ``Fill``: the account's other trading (another
   session, a manual order) since the session started becomes ``ExternalFill``
   (``engine.ownership``), never this session's history -- it shows up as drift;
2. for every order the log thinks is open: an ``OrderAccepted`` if the venue has it
   but the log still says Requested; ``OrderTriggered`` if the venue has triggered
   it; ``OrderAmended`` if qty/price/trigger differ; and if the venue no longer has
   it open, its final word from ``lookups`` (the venue's answer to "what happened to
   this orderLinkId?"): cancelled, rejected, or deactivated. A Requested order the
   venue has never heard of becomes a ``ReconciliationCorrection(kind="unsent")``:
   the command is in the log but never reached the venue, and may be sent (once);
3. open orders at the venue the log does not know become ``ExternalOrder`` (once each);
4. ``position_drift``, asked after the above are folded: if the book's position still
   differs from the venue's, a ``PositionDrift`` (not repeated while the same drift
   stands). ``settle`` does both for a view that owns its book.

The venue side is typed structurally (``VenueState``), so any snapshot with those
attributes works (``adapters.protocol.VenueSnapshot`` does) and projections never
import adapters. ``ReconcileView`` is the local side: the one local book
(``engine.book``) plus what reconciliation keeps of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Protocol

import msgspec

from engine.book import Book
from engine.events import (
    FILLED,
    NEW,
    REJECTED,
    REQUESTED,
    UNTRIGGERED,
    CancelOrder,
    EventBase,
    ExternalFill,
    ExternalOrder,
    Fill,
    FundingPaid,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderRejected,
    OrderTriggered,
    PositionDrift,
    PositionSnapshot,
    ReconciliationCorrection,
    SessionStarted,
)
from engine.orders import Order
from engine.ownership import Ownership, external_fill


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


#: ``SessionStarted.settings`` key: the venue time (ms) of the newest execution the account
#: already had when the session started. Those are the account's history, not external
#: activity during the session, and are never logged.
HISTORY_UNTIL: Final = "account_history_until_ms"


def account_history_until(venue: VenueState) -> int:
    """The newest execution time in ``venue`` (0 if it has none): what a new session
    records under ``HISTORY_UNTIL``."""
    times = [e.ts for e in (*venue.fills, *venue.funding, *venue.liquidations)]
    return max(times, default=0)


def _since(started: SessionStarted) -> int:
    text = started.settings.get(HISTORY_UNTIL)
    if text is None or not text.isdigit():
        return started.ts  # a log from before the setting: the session's own start
    return int(text) + 1


class ViewState(msgspec.Struct):
    """What a ``ReconcileView`` keeps of its own, as plain data (a restart restores it).

    Decodes the older, larger form too (its extra fields are ignored)."""

    exec_ids: list[str] = []
    reported_drift: int | None = None
    reported_unsent: list[str] = []
    cancel_requested: list[str] = []
    last_exec_ms: int = 0
    reported_external: list[str] = []
    since_ms: int = 0
    traded: bool | None = None  # None (an older snapshot): any execution logged


class ReconcileView:
    """The log's side of reconciliation, over the one local book.

    Orders and position are the book's (``engine.book.Book``): in the daemon the
    engine's own, which the engine folds; standalone (``ReconcileView(symbol)``, a
    test, a reader of a log) a book of its own that ``apply`` folds by the same rules.
    What the view keeps itself: every execution id in the log (this session's,
    refused or not, and external ones: never appended twice), the newest execution's
    time, the drift already reported, commands reported unsent, cancels requested,
    external orders already reported.
    """

    def __init__(self, symbol: str, book: Book | None = None, session_id: str = "") -> None:
        self.symbol = symbol
        self.owns_book = book is None
        self.book = book if book is not None else Book(symbol, 1, 0)
        self.ownership = Ownership(session_id) if session_id else None
        self.exec_ids: set[str] = set()
        self.reported_drift: int | None = None
        self.reported_unsent: set[str] = set()
        self.cancel_requested: set[str] = set()  # open orders a CancelOrder was logged for
        self.reported_external: set[str] = set()  # venue ids of external orders logged
        self.last_exec_ms = 0  # venue time of the newest execution in the log
        self.since_ms = 0  # venue ms: the account's executions before it are history
        self.traded = False  # an execution of this session's is in the log

    def fold(self, events: Iterable[EventBase]) -> ReconcileView:
        for event in events:
            self.apply(event)
        return self

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(
            ViewState(
                sorted(self.exec_ids),
                self.reported_drift,
                sorted(self.reported_unsent),
                sorted(self.cancel_requested),
                self.last_exec_ms,
                sorted(self.reported_external),
                self.since_ms,
                self.traded,
            )
        )

    @classmethod
    def restore(cls, data: bytes, book: Book, session_id: str = "") -> ReconcileView:
        """A view saved by ``snapshot``, over ``book`` (the engine's, restored with it)."""
        st = msgspec.msgpack.decode(data, type=ViewState)
        view = cls(book.symbol, book, session_id)
        view.exec_ids = set(st.exec_ids)
        view.reported_drift = st.reported_drift
        view.reported_unsent = set(st.reported_unsent)
        view.cancel_requested = set(st.cancel_requested)
        view.last_exec_ms = st.last_exec_ms
        view.reported_external = set(st.reported_external)
        view.since_ms = st.since_ms
        view.traded = bool(st.exec_ids) if st.traded is None else st.traded
        return view

    # ------------------------------------------------------------ over the book

    @property
    def position_qty(self) -> int:
        return self.book.positions[self.symbol].qty

    @property
    def orders(self) -> dict[str, Order]:
        """Every order the book holds (open and the closed it remembers), by client id."""
        return {**self.book.orders.closed, **self.book.orders.open}

    def order(self, client_id: str) -> Order | None:
        return self.book.get(client_id)

    def open_orders(self) -> list[Order]:
        return list(self.book.orders.open.values())

    def owns(self, client_id: str) -> bool:
        """This session's order: in the book, or carrying the session's prefix."""
        if self.book.get(client_id) is not None:
            return True
        return self.ownership is not None and self.ownership.owns(client_id)

    def apply(self, event: EventBase) -> None:
        kind = type(event)
        if kind is SessionStarted:
            assert isinstance(event, SessionStarted)
            if self.owns_book:
                self.book = Book.of_session(event)
                self.symbol = self.book.symbol
            self.ownership = Ownership(event.session_id)
            self.since_ms = _since(event)
        elif self.owns_book:
            self.book.apply(event)
        if kind is Fill or kind is Liquidated or kind is FundingPaid or kind is ExternalFill:
            exec_id: str = event.exec_id  # type: ignore[attr-defined]
            if exec_id not in self.exec_ids:
                self.exec_ids.add(exec_id)
                self.last_exec_ms = max(self.last_exec_ms, event.ts)
                self.traded = self.traded or kind is not ExternalFill
        elif kind is CancelOrder:
            assert isinstance(event, CancelOrder)
            self.cancel_requested.add(event.client_id)
        elif kind is ExternalOrder:
            assert isinstance(event, ExternalOrder)
            self.reported_external.add(event.venue_id or event.client_id)
        elif kind is PositionDrift:
            assert isinstance(event, PositionDrift)
            self.reported_drift = event.venue_qty
        elif kind is ReconciliationCorrection:
            assert isinstance(event, ReconciliationCorrection)
            if event.kind == "unsent":
                self.reported_unsent.add(event.client_id)


def reconcile(
    local: ReconcileView,
    venue: VenueState,
    *,
    ts: int,
    lookups: Mapping[str, FinalStatus] | None = None,
) -> list[EventBase]:
    """The correction events that bring ``local`` to the venue's truth (see module doc).

    Position drift is judged on the book *after* these corrections are folded
    (``position_drift``; ``settle`` does both for a view that owns its book)."""
    out: list[EventBase] = []
    seen: set[str] = set()
    accepted: set[str] = set()
    executions: list[Fill | FundingPaid | Liquidated] = [*venue.fills, *venue.funding]
    executions += venue.liquidations
    executions.sort(key=lambda e: (e.ts, e.exec_id))
    for ex in executions:
        if ex.exec_id in local.exec_ids or ex.exec_id in seen:
            continue
        if isinstance(ex, Fill) and not local.owns(ex.client_id):
            # Another session's or a manual order: made visible, never this session's.
            if ex.ts >= local.since_ms:
                seen.add(ex.exec_id)
                out.append(external_fill(ex))
            continue
        if not isinstance(ex, Fill) and not local.traded and not seen:
            continue  # funding/liquidation before this session ever traded: not ours
        seen.add(ex.exec_id)
        if isinstance(ex, Fill):
            lo = local.order(ex.client_id)
            if lo is not None and lo.status == REQUESTED and ex.client_id not in accepted:
                # The acknowledgement was lost too: restore it before the fill.
                accepted.add(ex.client_id)
                out.append(OrderAccepted(ex.ts, ex.client_id, ex.venue_id))
        out.append(ex)

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
        if vo.client_id and local.owns(vo.client_id):
            continue
        if (vo.venue_id or vo.client_id) in local.reported_external:
            continue
        out.append(
            ExternalOrder(ts, vo.venue_id, vo.client_id, vo.side, vo.qty, vo.price, vo.status)
        )
    return out


def position_drift(
    local: ReconcileView, venue: VenueState, *, ts: int, adopt: bool = False
) -> list[PositionDrift]:
    """``[PositionDrift]`` if the book's position differs from the venue's (once per
    distinct venue quantity), else ``[]``. Call it after the corrections are folded."""
    mine = [p for p in venue.positions if p.symbol == local.symbol]
    venue_qty = sum(p.qty for p in mine)
    pos = local.book.positions[local.symbol]
    if venue_qty == pos.qty or local.reported_drift == venue_qty:
        return []
    venue_value = sum(p.entry_value for p in mine)
    return [
        PositionDrift(
            ts, local.symbol, pos.qty, venue_qty, pos.entry_value, venue_value, adopt=adopt
        )
    ]


def settle(
    local: ReconcileView,
    venue: VenueState,
    *,
    ts: int,
    lookups: Mapping[str, FinalStatus] | None = None,
    adopt_drift: bool = False,
) -> list[EventBase]:
    """Reconcile a view that owns its book: the corrections, folded into it, then the
    drift (also folded). What the daemon does with the engine in between."""
    out = reconcile(local, venue, ts=ts, lookups=lookups)
    local.fold(out)
    drift = position_drift(local, venue, ts=ts, adopt=adopt_drift)
    local.fold(drift)
    return [*out, *drift]
