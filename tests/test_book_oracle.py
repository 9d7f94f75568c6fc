"""Every read model's orders, position and balance against an independent oracle.

A backtest loop (engine + simulated venue) whose venue stream is dirtied on its way to
the log the way a shared account's stream is: fills and order events of orders this
session never placed (a manual order: client id ""; another session: ``L1-...``; a
foreign prefix), every real venue event delivered again later, and all of that
scattered at random points between the real events.

The oracle is not the shared book (that would agree by construction):

* the simulated venue's own position, wallet and open orders -- it never saw any of the
  injected events;
* the log's own fills whose client id carries this session's prefix, each execution id
  counted once (plus liquidations, also once).

Every read model -- the engine's state, ``AccountView`` (report, metrics, inspect),
``ReconcileView`` (the daemon's reconciliation side) -- must equal both.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sim.config import SimConfig
from adapters.sim.venue import SimVenue
from engine.commands import client_prefix
from engine.config import EngineConfig, RiskLimits
from engine.core import new_state, step
from engine.events import (
    BUY,
    COMMAND_TYPES,
    SELL,
    CandleClosed,
    Event,
    EventBase,
    Fill,
    FundingPaid,
    Intent,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
)
from engine.state import EngineState
from projections.account import AccountView
from projections.metrics import summarize
from projections.reconcile import ReconcileView
from tests.test_engine_support import INITIAL, INSTRUMENT, Scripted, signed, started
from tests.test_engine_with_sim import intent_pool, walk

SESSION = started().session_id
PREFIX = client_prefix(SESSION) + "-"
FOREIGN_IDS = ("", "L1-3", "L1-17", f"{client_prefix('other-session')}-1", "manual")

# (kind, a, b): an injected event, drawn before the run and placed at random.
garbage = st.tuples(
    st.sampled_from(["xfill", "xfill", "xaccept", "xcancel", "xamend", "dup", "dup", "dup"]),
    st.integers(0, 10_000),
    st.integers(1, 40),
)


def run(
    seed: int, script: dict[int, list[Intent]], noise: list[tuple[str, int, int]], flip: bool
) -> tuple[EngineState, SimVenue, list[Event]]:
    rnd = random.Random(seed)
    config = EngineConfig(risk=RiskLimits(allow_flip=flip, max_leverage=5.0), checkpoint_every=25)
    sim = SimConfig(funding_rate_e8=10_000, funding_interval_ms=600_000)
    state = new_state(started(), Scripted(script), config)
    venue = SimVenue(INSTRUMENT, sim, INITIAL)
    log: list[Event] = [started()]
    real: list[EventBase] = []  # venue events as the venue sent them
    pending = list(noise)

    def fold(ev: Any) -> None:
        log.append(ev)
        out = step(state, ev)
        log.extend(out)
        for d in out:
            if type(d) in COMMAND_TYPES:
                for answer in venue.on_command(d):  # type: ignore[arg-type]
                    deliver(answer)

    def deliver(ev: EventBase) -> None:
        real.append(ev)
        fold(ev)
        while pending and rnd.random() < 0.3:
            inject(pending.pop())

    def inject(item: tuple[str, int, int]) -> None:
        kind, a, b = item
        ts = state.ts
        cid = FOREIGN_IDS[a % len(FOREIGN_IDS)]
        price = state.last_close or 500_000
        if kind == "xfill":
            side = BUY if a % 2 else SELL
            fold(Fill(ts, cid, f"x-{a}", f"xe-{a}-{b}", "BTCUSDT", side, price, b, 7))
        elif kind == "xaccept":
            fold(OrderAccepted(ts, cid, f"x-{a}"))
        elif kind == "xcancel":
            fold(OrderCancelled(ts, cid, f"x-{a}"))
        elif kind == "xamend":
            fold(OrderAmended(ts, cid, f"x-{a}", qty=b))
        elif real:  # the same venue event again, later
            again = real[a % len(real)]
            # Not an amend: the engine cannot tell a stale OrderAmended from a new one
            # (no per-order amend clock; venue and local clocks differ), so a late copy
            # would undo a newer amend. Known limit, stated in the README (the adapter section).
            if type(again) is not OrderAmended:
                fold(again)

    for c in walk(seed, 60):
        for ev in venue.on_candle(c):
            deliver(ev)
        fold(c)
    return state, venue, log


def oracle_from_log(log: list[Event]) -> tuple[int, int]:
    """(qty, fees) from the log's own executions only, each execution id once."""
    qty = fees = 0
    seen: set[str] = set()
    for e in log:
        own = type(e) is Fill and e.client_id.startswith(PREFIX)
        if (own or type(e) is Liquidated) and e.exec_id not in seen:  # type: ignore[union-attr]
            seen.add(e.exec_id)  # type: ignore[union-attr]
            qty += signed(e.side, e.qty)  # type: ignore[union-attr]
            fees += e.fee  # type: ignore[union-attr]
    return qty, fees


def funding_from_log(log: list[Event]) -> int:
    seen: dict[str, int] = {}
    for e in log:
        if type(e) is FundingPaid:
            seen.setdefault(e.exec_id, e.amount)
    return sum(seen.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 10_000),
    st.dictionaries(st.integers(0, 59), st.lists(intent_pool, min_size=1, max_size=2)),
    st.lists(garbage, min_size=5, max_size=60),
    st.booleans(),
)
def test_every_read_model_equals_the_venue_and_the_logs_own_fills(
    seed: int, script: dict[int, list[Intent]], noise: list[tuple[str, int, int]], flip: bool
) -> None:
    state, venue, log = run(seed, script, noise, flip)
    vpos = venue.position
    log_qty, log_fees = oracle_from_log(log)
    # The oracle agrees with itself: the venue executed exactly the session's own fills.
    assert log_qty == vpos.qty and log_fees == vpos.fees
    assert funding_from_log(log) == vpos.funding
    open_at_venue = list(venue.orders)
    last = next(e for e in reversed(log) if type(e) is CandleClosed)
    equity = venue.wallet + vpos.unrealized(last.close, INSTRUMENT.notional_unit)

    # The engine.
    assert state.position.qty == vpos.qty
    assert state.position.entry_value == vpos.entry_value
    assert state.balance == venue.wallet
    assert state.equity == equity
    assert list(state.book.open) == open_at_venue

    # The account view: what report, metrics and inspect show.
    account = AccountView().fold(log)
    assert account.position.qty == vpos.qty
    assert account.position.entry_value == vpos.entry_value
    assert account.balance == venue.wallet
    assert account.fees_paid == vpos.fees
    assert account.funding_paid == vpos.funding
    assert account.equity == equity
    summary = summarize(account)
    assert round(summary.final_equity * 1e8) == equity
    assert sum(t.fees for t in account.trades) <= vpos.fees + abs(vpos.fees)

    # The reconciliation side: what the daemon compares with the venue.
    recon = ReconcileView(SESSION_SYMBOL).fold(log)
    assert recon.position_qty == vpos.qty
    assert [o.client_id for o in recon.open_orders()] == open_at_venue


SESSION_SYMBOL = INSTRUMENT.symbol


def test_a_clean_run_is_its_own_oracle() -> None:
    """Without noise the oracle and the venue agree trivially (the test's own sanity)."""
    script = {
        i: [Intent("enter_long", qty=30)] if i % 10 == 0 else [Intent("exit")]
        for i in (0, 5, 10, 15, 20)
    }
    state, venue, log = run(3, script, [], False)
    assert any(type(e) is Fill for e in log)
    assert oracle_from_log(log) == (venue.position.qty, venue.position.fees)
    assert msgspec.structs.asdict(state.position) == msgspec.structs.asdict(venue.position)
