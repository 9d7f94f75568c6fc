"""Reconciliation converges to the venue's truth, whatever the log lost, and is idempotent."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.protocol import OpenOrder, VenueSnapshot
from engine.events import (
    BUY,
    CANCELLED,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    REQUESTED,
    SELL,
    EventBase,
    ExternalOrder,
    Fill,
    OrderAccepted,
    OrderCancelled,
    PositionDrift,
    PositionSnapshot,
    ReconciliationCorrection,
    SubmitOrder,
)
from projections.reconcile import FinalStatus, ReconcileView, reconcile, settle

SYMBOL = "BTCUSDT"


@dataclass
class Truth:
    """What really happened: the commands, the venue's events, and its final state."""

    commands: list[SubmitOrder] = field(default_factory=list)
    venue_events: list[EventBase] = field(default_factory=list)
    open_orders: list[OpenOrder] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    finals: dict[str, FinalStatus] = field(default_factory=dict)
    unsent: list[str] = field(default_factory=list)
    position: int = 0

    def snapshot(self, extra_open: list[OpenOrder] = ()) -> VenueSnapshot:  # type: ignore[assignment]
        return VenueSnapshot(
            ts=10**9,
            open_orders=[*self.open_orders, *extra_open],
            positions=[PositionSnapshot(10**9, SYMBOL, self.position, 0)],
            fills=list(self.fills),
        )


order_fate = st.tuples(
    st.sampled_from([BUY, SELL]),
    st.integers(1, 50),  # qty
    st.lists(st.integers(1, 20), max_size=4),  # partial fill sizes (trimmed to qty)
    st.sampled_from(["open", "cancel", "unsent"]),
)


def build(fates: list[tuple[str, int, list[int], str]]) -> Truth:
    truth = Truth()
    exec_n = 0
    for i, (side, qty, parts, fate) in enumerate(fates):
        cid, vid = f"s-{i}", f"v-{i}"
        truth.commands.append(SubmitOrder(i, cid, SYMBOL, side, "Limit", qty, price=100))
        if fate == "unsent":
            truth.unsent.append(cid)
            truth.finals[cid] = FinalStatus("")
            continue
        truth.venue_events.append(OrderAccepted(i, cid, vid))
        filled = 0
        for part in parts:
            part = min(part, qty - filled)
            if part <= 0:
                break
            exec_n += 1
            f = Fill(i, cid, vid, f"x-{exec_n}", SYMBOL, side, 100, part, 1)
            truth.venue_events.append(f)
            truth.fills.append(f)
            filled += part
            truth.position += part if side == BUY else -part
        if filled == qty:
            truth.finals[cid] = FinalStatus(FILLED, vid)
        elif fate == "cancel":
            truth.venue_events.append(OrderCancelled(i, cid, vid))
            truth.finals[cid] = FinalStatus(CANCELLED, vid)
        else:
            status = PARTIALLY_FILLED if filled else NEW
            truth.open_orders.append(
                OpenOrder(cid, vid, SYMBOL, side, "Limit", qty, filled, 100, status=status)
            )
    return truth


@st.composite
def damaged_logs(draw: st.DrawFn) -> tuple[Truth, list[EventBase]]:
    """The truth, and a log that lost, duplicated and shuffled the venue's events.

    As the stream converter guarantees (it holds an order's end until its fills are in),
    an order's cancellation, when the log has it, comes after all of that order's fills;
    the engine's book refuses a fill after the end, so any other log shows as drift."""
    truth = build(draw(st.lists(order_fate, min_size=1, max_size=12)))
    kept = [e for e in truth.venue_events if draw(st.booleans())]
    ended = {e.client_id for e in kept if isinstance(e, OrderCancelled)}
    kept += [f for f in truth.fills if f.client_id in ended and f not in kept]
    dupes = draw(st.lists(st.sampled_from(kept), max_size=5)) if kept else []
    venue_part = draw(st.permutations(kept + dupes))
    ends: list[EventBase] = [e for e in venue_part if isinstance(e, OrderCancelled)]
    venue_part = [e for e in venue_part if not isinstance(e, OrderCancelled)] + ends
    return truth, [*truth.commands, *venue_part]


def fold(events: list[EventBase]) -> ReconcileView:
    return ReconcileView(SYMBOL).fold(events)


@settings(max_examples=150, deadline=None)
@given(damaged_logs())
def test_any_damaged_log_converges_to_the_venue_and_a_second_pass_is_a_no_op(
    case: tuple[Truth, list[EventBase]],
) -> None:
    truth, log = case
    snapshot = truth.snapshot()
    corrections = settle(fold(log), snapshot, ts=10**9, lookups=truth.finals)
    repaired = fold([*log, *corrections])

    assert repaired.position_qty == truth.position
    assert repaired.exec_ids == {f.exec_id for f in truth.fills}
    open_ids = {o.client_id for o in repaired.open_orders() if o.status != REQUESTED}
    assert open_ids == {o.client_id for o in truth.open_orders}
    # An order that never reached the venue is reported, once, as unsent.
    unsent = [c.client_id for c in corrections if isinstance(c, ReconciliationCorrection)]
    pending = [cid for cid in truth.unsent if repaired.orders[cid].status == REQUESTED]
    assert sorted(unsent) == sorted(pending)
    assert not any(isinstance(c, PositionDrift) for c in corrections)
    # Applying the diff twice changes nothing.
    assert settle(repaired, snapshot, ts=10**9, lookups=truth.finals) == []


def test_an_order_placed_outside_the_session_is_external() -> None:
    truth = build([(BUY, 5, [], "open")])
    stranger = OpenOrder("", "v-hand", SYMBOL, SELL, "Limit", 3, 0, 120)
    corrections = reconcile(
        fold(truth.commands + truth.venue_events), truth.snapshot([stranger]), ts=1
    )
    assert corrections == [ExternalOrder(1, "v-hand", "", SELL, 3, 120, NEW)]


def test_a_position_the_fills_cannot_explain_is_drift_reported_once() -> None:
    truth = build([(BUY, 5, [5], "open")])
    snapshot = VenueSnapshot(ts=7, positions=[PositionSnapshot(7, SYMBOL, 9, 0)], fills=truth.fills)
    view = fold(truth.commands + truth.venue_events)
    corrections = settle(view, snapshot, ts=7)
    assert corrections == [PositionDrift(7, SYMBOL, 5, 9, 5 * 100)]
    assert settle(view, snapshot, ts=7) == []


def test_an_open_order_the_venue_no_longer_knows_is_closed_as_vanished() -> None:
    truth = build([(BUY, 5, [2], "open")])
    log = truth.commands + truth.venue_events
    gone = VenueSnapshot(ts=9, positions=[PositionSnapshot(9, SYMBOL, 2, 0)], fills=truth.fills)
    corrections = reconcile(fold(log), gone, ts=9, lookups={})
    assert corrections == [OrderCancelled(9, "s-0", "v-0", reason="VanishedAtVenue")]
    assert fold([*log, *corrections]).open_orders() == []


def test_fills_of_orders_this_session_never_placed_are_not_adopted_but_show_as_drift() -> None:
    """A fresh session on an account that traded yesterday must not import yesterday."""
    yesterday = Fill(1, "other-1", "v-9", "x-9", SYMBOL, BUY, 100, 4, 1)
    snapshot = VenueSnapshot(ts=9, positions=[PositionSnapshot(9, SYMBOL, 4, 0)], fills=[yesterday])
    view = ReconcileView(SYMBOL)
    view.since_ms = 5  # the session started after that fill
    corrections = settle(view, snapshot, ts=9)
    assert corrections == [PositionDrift(9, SYMBOL, 0, 4)]


def test_fills_of_other_orders_since_the_start_are_external_and_never_position() -> None:
    """A manual order (client id "") and another session's (L1-) during this session."""
    from engine.commands import client_prefix
    from engine.events import ExternalFill, SessionStarted
    from engine.instrument import BTCUSDT

    started = SessionStarted(3, "L2", "demo", "", "", "emulator", BTCUSDT, "t", 10**12)
    own = f"{client_prefix('L2')}-1"
    mine = SubmitOrder(4, own, SYMBOL, BUY, "Market", 2)
    fills = [
        Fill(5, "", "v-hand", "x-1", SYMBOL, BUY, 100, 10, 1),
        Fill(6, "L1-4", "v-l1", "x-2", SYMBOL, SELL, 100, 3, 1),
        Fill(7, own, "v-own", "x-3", SYMBOL, BUY, 100, 2, 1),
    ]
    snapshot = VenueSnapshot(ts=9, positions=[PositionSnapshot(9, SYMBOL, 9, 0)], fills=fills)
    view = ReconcileView(SYMBOL).fold([started, mine])
    corrections = settle(view, snapshot, ts=9)
    external = [c for c in corrections if isinstance(c, ExternalFill)]
    assert [(e.client_id, e.exec_id, e.qty) for e in external] == [
        ("", "x-1", 10),
        ("L1-4", "x-2", 3),
    ]
    assert [c.exec_id for c in corrections if isinstance(c, Fill)] == ["x-3"]
    assert view.position_qty == 2  # only this session's fill
    drift = corrections[-1]
    assert isinstance(drift, PositionDrift) and (drift.local_qty, drift.venue_qty) == (2, 9)
    assert settle(view, snapshot, ts=9) == []  # logged once, reported once


def test_adopting_a_drift_makes_the_engine_and_the_view_hold_the_venues_position() -> None:
    from engine.config import EngineConfig
    from engine.core import new_state, step
    from engine.events import SessionStarted
    from engine.instrument import BTCUSDT
    from engine.strategy import NullStrategy

    snapshot = VenueSnapshot(ts=7, positions=[PositionSnapshot(7, SYMBOL, 9, 9 * 100 * 10_000)])
    view = fold([])
    drift = settle(view, snapshot, ts=7, adopt_drift=True)
    assert drift == [PositionDrift(7, SYMBOL, 0, 9, 0, 9 * 100 * 10_000, adopt=True)]
    assert view.position_qty == 9 and settle(view, snapshot, ts=7, adopt_drift=True) == []

    started = SessionStarted(0, "s", "demo", "", "", "emulator", BTCUSDT, "t", 10**12)
    state = new_state(started, NullStrategy(), EngineConfig())
    adopted = drift[0]
    assert isinstance(adopted, PositionDrift)
    step(state, adopted)
    assert (state.position.qty, state.position.entry_value) == (9, 9 * 100 * 10_000)
    assert state.balance == 10**12  # adopting books no profit or loss
    unadopted = new_state(started, NullStrategy(), EngineConfig())
    step(unadopted, PositionDrift(7, SYMBOL, 0, 9))
    assert unadopted.position.qty == 0  # a recorded drift alone changes nothing


def test_a_view_restored_over_the_engines_book_keeps_only_its_own_and_reads_older_snapshots() -> (
    None
):
    import msgspec

    from engine.book import Book

    book = Book(SYMBOL, 1, 0)
    view = ReconcileView(SYMBOL, book, "s")
    cmd = SubmitOrder(1, "s-0", SYMBOL, BUY, "Limit", 5, price=100)
    book.submit(cmd)  # the engine folds its book; the view only watches the log
    view.fold([cmd, Fill(2, "s-0", "v-0", "x-1", SYMBOL, BUY, 100, 2, 1)])
    assert view.position_qty == 0 and view.exec_ids == {"x-1"}  # not folded twice
    book.fill(Fill(2, "s-0", "v-0", "x-1", SYMBOL, BUY, 100, 2, 1))
    again = ReconcileView.restore(view.snapshot(), book, "s")
    assert again.position_qty == 2 and again.exec_ids == {"x-1"} and again.traded
    assert [o.client_id for o in again.open_orders()] == ["s-0"]
    # A snapshot written before the one book (it kept its own orders and position).
    old = {
        "symbol": SYMBOL,
        "orders": [{"client_id": "s-0", "status": "New", "qty": 5}],
        "exec_ids": ["x-1"],
        "position_qty": 7,
        "reported_drift": 7,
        "reported_unsent": [],
        "cancel_requested": ["s-0"],
        "last_exec_ms": 2,
    }
    older = ReconcileView.restore(msgspec.msgpack.encode(old), book, "s")
    assert older.position_qty == 2  # the book's, not the old copy's 7
    assert (older.reported_drift, older.cancel_requested, older.traded) == (7, {"s-0"}, True)
