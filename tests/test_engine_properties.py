"""Properties of the fold over random sessions: candles, scripted intents and venue events,
including garbage (unknown ids, duplicates, events in the wrong state, shuffles).

A session is generated as a list of operations played by a hand-made venue (``drive``);
the engine's inputs are then re-folded from the log to check determinism, replay from a
snapshot, exact accounting, and that only legal transitions were ever applied.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.book import Book
from engine.config import EngineConfig, ExecutionDefaults, RiskLimits
from engine.core import new_state, restore_state, snapshot_state, step
from engine.events import (
    ACTIONS,
    BUY,
    CANCELLED,
    DEACTIVATED,
    DERIVED_TYPES,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    PARTIALLY_FILLED_CANCELED,
    REJECTED,
    REQUESTED,
    SELL,
    TRIGGERED,
    UNTRIGGERED,
    CandleClosed,
    CommandRejected,
    Event,
    Fill,
    FundingPaid,
    Halt,
    Heartbeat,
    Intent,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    SubmitOrder,
    TransitionRejected,
    encode,
)
from engine.hashing import state_hash
from engine.intents import client_prefix
from engine.state import EngineState
from tests.test_engine_support import INITIAL, T0, UNIT, Desk, Scripted, signed, started

REPO = Path(__file__).resolve().parents[1]

KINDS = (
    "candle",
    "candle",
    "candle",
    "candle",
    "accept",
    "accept",
    "accept",
    "fill",
    "fill",
    "fill",
    "fill",
    "dupfill",
    "reject",
    "cancel",
    "expire",
    "trigger",
    "amend",
    "cmdrej",
    "ghost",
    "funding",
    "liq",
    "halt",
    "heartbeat",
)

# Legal status changes, written out independently of engine/orders.py's table.
LEGAL_EDGES = {
    (REQUESTED, NEW),
    (REQUESTED, UNTRIGGERED),
    (REQUESTED, REJECTED),
    (REQUESTED, PARTIALLY_FILLED),
    (REQUESTED, FILLED),
    (REQUESTED, CANCELLED),
    (NEW, PARTIALLY_FILLED),
    (NEW, FILLED),
    (NEW, CANCELLED),
    (PARTIALLY_FILLED, PARTIALLY_FILLED),
    (PARTIALLY_FILLED, FILLED),
    (PARTIALLY_FILLED, PARTIALLY_FILLED_CANCELED),
    (UNTRIGGERED, TRIGGERED),
    (UNTRIGGERED, DEACTIVATED),
    (TRIGGERED, PARTIALLY_FILLED),
    (TRIGGERED, FILLED),
    (TRIGGERED, CANCELLED),
}

intents = st.one_of(
    st.builds(
        Intent,
        action=st.sampled_from(["enter_long", "enter_short", "add"]),
        qty=st.integers(0, 40),
        equity_pct=st.sampled_from([0.0, 5.0, 12.5]),
        stop_loss=st.sampled_from([0.0, 480_000.0, 520_000.0]),
        take_profit=st.sampled_from([0.0, 480_000.5, 530_000.0]),
        style=st.sampled_from(["market", "market", "limit", "twap", "iceberg"]),
        timeout_bars=st.integers(0, 3),
        slices=st.integers(0, 4),
        slice_every_bars=st.integers(0, 2),
    ),
    st.builds(Intent, action=st.just("reduce"), reduce_pct=st.sampled_from([25.0, 50.0, 100.0])),
    st.builds(Intent, action=st.sampled_from(["exit", "cancel_all"])),
    st.builds(
        Intent,
        action=st.just("place_limit"),
        side=st.sampled_from([BUY, SELL, BUY, SELL, ""]),
        price=st.floats(490_000, 510_000),
        qty=st.integers(1, 20),
        timeout_bars=st.integers(0, 2),
    ),
    st.builds(
        Intent,
        action=st.sampled_from(["set_stop", "set_take_profit", "trail_stop"]),
        price=st.sampled_from([0.0, 490_000.0, 510_000.0]),
        stop_distance=st.sampled_from([0.0, 300.0]),
        trail_distance=st.sampled_from([0.0, 150.0]),
    ),
)
scripts = st.dictionaries(st.integers(0, 15), st.lists(intents, min_size=1, max_size=2))
ops = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 1000), st.integers(-300, 300)),
    min_size=30,
    max_size=120,
)
configs = st.sampled_from(
    [
        EngineConfig(checkpoint_every=7),
        EngineConfig(
            risk=RiskLimits(allow_flip=True, max_leverage=0, daily_loss_limit_pct=1.0),
            execution=ExecutionDefaults(limit_timeout_bars=2),
            checkpoint_every=5,
        ),
    ]
)


def drive(script: dict[int, list[Intent]], plan: list[tuple[str, int, int]], config: Any) -> Desk:
    """Play ``plan`` against the engine as a (sloppy, sometimes wrong) venue would."""
    d = Desk(script, config)
    subs: list[SubmitOrder] = []
    sent: list[Any] = []
    price = 500_000
    for kind, a, b in plan:
        before = len(d.derived)
        if kind == "candle":
            price = max(price + b * 10, 1_000)
            d.close(price)
        elif kind == "heartbeat":
            d.feed(Heartbeat(d.ts + a * 1_000))
        elif kind == "halt":
            if a > 900:  # rare: a halt ends all trading for the session
                d.feed(Halt(d.now(), "test"))
        elif kind == "funding":
            sent.append(FundingPaid(d.now(), "BTCUSDT", f"fund-{a % 7}", amount=b * 1_000))
            d.feed(sent[-1])
        elif kind == "liq":
            qty = d.state.position.qty
            side = SELL if qty > 0 else BUY
            sent.append(Liquidated(d.now(), "BTCUSDT", f"liq-{a % 5}", side, price, abs(qty), 99))
            d.feed(sent[-1])
        elif kind == "dupfill":
            if sent:
                d.feed(sent[a % len(sent)])
        elif kind == "ghost":
            d.feed(Fill(d.now(), f"ghost-{a}", "v", f"g{a}", "BTCUSDT", BUY, price, 1, 1))
        elif subs:
            # Mostly orders that are open (a plausible venue), sometimes any order at all.
            live = [c for c in subs if c.client_id in d.state.book.open]
            cmd = live[a % len(live)] if live and a % 4 else subs[a % len(subs)]
            cid, vid = cmd.client_id, "v-" + cmd.client_id
            order = d.state.book.open.get(cid)
            if kind == "accept":
                d.accept(cmd)
            elif kind == "trigger":
                d.trigger(cmd)
            elif kind == "fill":
                left = order.remaining if order is not None and b % 3 else cmd.qty
                d.fill(cmd, 1 + abs(b) % max(left, 1), max(price + b, 1))
                sent.append(d.log[-1 - (len(d.derived) - before)])
            elif kind == "reject":
                d.feed(OrderRejected(d.now(), cid, "EC_PostOnlyWillTakeLiquidity", 110007))
            elif kind == "cancel":
                d.cancelled(cid)
            elif kind == "expire":
                d.feed(OrderExpired(d.now(), cid, vid))
            elif kind == "amend":
                d.feed(OrderAmended(d.now(), cid, vid, qty=max(cmd.qty + b % 7 - 3, 0)))
            elif kind == "cmdrej":
                d.feed(CommandRejected(d.now(), cid, "amend" if b > 0 else "cancel", "no", 1))
        subs.extend(e for e in d.derived[before:] if type(e) is SubmitOrder)
    return d


def inputs_of(log: list[Event]) -> list[Event]:
    return [e for e in log if type(e) not in DERIVED_TYPES]


def refold(
    inputs: list[Event], script: dict[int, list[Intent]], config: Any, state: Any = None
) -> tuple[EngineState, list[Event]]:
    s = state if state is not None else new_state(started(), Scripted(script), config)
    derived: list[Event] = []
    for ev in inputs:
        derived.extend(step(s, ev))
    return s, derived


def digest(events: list[Event]) -> str:
    h = hashlib.sha256()
    for e in events:
        h.update(encode(e))
    return h.hexdigest()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts, ops, configs)
def test_refold_is_deterministic_and_replays_from_a_snapshot(script, plan, config) -> None:
    d = drive(script, plan, config)
    inputs = inputs_of(d.log)
    s1, derived1 = refold(inputs, script, config)
    assert digest(derived1) == digest(d.derived)
    assert state_hash(s1) == state_hash(d.state)
    # Interrupt anywhere, snapshot, restore with a fresh strategy, finish: same result.
    cut = len(inputs) // 2
    s2, head = refold(inputs[:cut], script, config)
    restored = restore_state(snapshot_state(s2), Scripted(script))
    assert state_hash(restored) == state_hash(s2)
    _, tail = refold(inputs[cut:], script, config, state=restored)
    assert digest(head + tail) == digest(d.derived)
    assert state_hash(restored) == state_hash(d.state)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts, ops, configs)
def test_accounting_is_exact_and_only_legal_transitions_apply(script, plan, config) -> None:
    d = drive(script, plan, config)
    inputs = inputs_of(d.log)
    s = new_state(started(), Scripted(script), config)
    qty = fees = funding = cash = 0
    counted: set[str] = set()
    status: dict[str, str] = {}
    ev: Any
    for ev in inputs:
        out = step(s, ev)
        refused = any(type(e) is TransitionRejected for e in out)
        if type(ev) in (Fill, Liquidated) and not refused:
            assert ev.exec_id not in counted  # a counted execution is never counted again
            counted.add(ev.exec_id)
            qty += signed(ev.side, ev.qty)
            fees += ev.fee
            cash += -signed(ev.side, ev.qty) * ev.price * UNIT  # sells bring cash in
        if type(ev) is FundingPaid and not refused:
            assert ev.exec_id not in counted
            counted.add(ev.exec_id)
            funding += ev.amount
        for cmd in out:
            if type(cmd) is SubmitOrder:
                status[cmd.client_id] = REQUESTED
        for cid, old in list(status.items()):
            order = s.book.get(cid)
            if order is None:
                continue  # dropped from the bounded closed list
            if order.status != old:
                assert (old, order.status) in LEGAL_EDGES, (cid, old, order.status, ev)
                status[cid] = order.status
            assert 0 <= order.filled <= order.qty
    pos = s.position
    assert pos.qty == qty
    assert pos.fees == fees and pos.funding == funding
    assert pos.realized == cash + (pos.entry_value if qty > 0 else -pos.entry_value)
    assert s.balance == INITIAL + pos.realized - fees - funding
    assert pos.entry_value >= 0 and (qty != 0 or pos.entry_value == 0)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts, ops, configs, st.randoms(use_true_random=False))
def test_duplicated_and_shuffled_venue_events_never_double_count(script, plan, config, rnd) -> None:
    d = drive(script, plan, config)
    inputs = inputs_of(d.log)
    s_ref = new_state(started(), Scripted(script), config)
    counted = []
    for ev in inputs:
        refused = any(type(e) is TransitionRejected for e in step(s_ref, ev))
        counted.append(type(ev) in (Fill, FundingPaid, Liquidated) and not refused)
    # Every counted execution delivered again, somewhere later: the position is unchanged.
    # (A copy of a *refused* execution may legitimately count later, e.g. after an amend.)
    doubled = list(inputs)
    for i in reversed(range(len(inputs))):
        if counted[i]:
            doubled.insert(rnd.randint(i + 1, len(doubled)), inputs[i])
    s_dup, _ = refold(doubled, script, config)
    assert s_dup.position == s_ref.position
    # Venue events shuffled: whatever is applied, the books still balance.
    shuffled = list(inputs)
    rnd.shuffle(shuffled)
    s_sh, _ = refold(shuffled, script, config)
    p = s_sh.position
    assert s_sh.balance == INITIAL + p.realized - p.fees - p.funding
    assert all(0 <= o.filled <= o.qty for o in s_sh.book.open.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts, ops, configs)
def test_the_book_folded_from_the_log_agrees_with_the_engine(script, plan, config) -> None:
    d = drive(script, plan, config)
    book = Book.of_session(started())
    at_close = []  # the book's equity marked at each candle's close
    for ev in [started(), *d.log]:
        book.apply(ev)
        if type(ev) is CandleClosed:
            book.mark(ev.symbol, ev.close)
            at_close.append(book.equity())
    s = d.state
    assert book.position == s.position
    assert book.balance == s.balance
    assert book.equity() == s.equity
    if d.strategy.seen:  # marked at the last close: what the strategy was told
        assert at_close[-1] == d.strategy.seen[-1].equity
    assert list(book.orders.open) == list(s.book.open)
    assert set(book.orders.closed) >= set(s.book.closed)


def fixed_scenario_digest(seed: int = 7) -> str:
    """One long pseudo-random session; the digest of its derived bytes and final hash."""
    rnd = random.Random(seed)
    pool = [
        Intent("enter_long", qty=10, stop_loss=490_000, take_profit=515_000),
        Intent("enter_short", equity_pct=5, style="twap", slices=3),
        Intent("reduce", reduce_pct=50),
        Intent("exit"),
        Intent("trail_stop", trail_distance=200),
        Intent("place_limit", side=BUY, price=495_000.5, qty=3, timeout_bars=2),
    ]
    script = {i: [rnd.choice(pool)] for i in range(0, 150, 3)}
    plan = [(rnd.choice(KINDS), rnd.randrange(1000), rnd.randrange(-300, 301)) for _ in range(600)]
    config = EngineConfig(risk=RiskLimits(allow_flip=True, max_leverage=0), checkpoint_every=50)
    d = drive(script, plan, config)
    return digest(d.derived) + ":" + state_hash(d.state)


def test_same_bytes_under_different_hash_seeds() -> None:
    code = "from tests.test_engine_properties import fixed_scenario_digest as f; print(f())"
    results = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        results.append(proc.stdout.strip())
    assert results[0] == results[1] == fixed_scenario_digest()
    assert len(results[0]) == 64 + 1 + 64


# ------------------------------------------------------------------------- garbage

_PREFIX = client_prefix(started().session_id)
_ts = st.integers(T0, T0 + 10 * 60_000)
_cid = st.one_of(st.integers(1, 8).map(lambda n: f"{_PREFIX}-{n}"), st.text(max_size=3))
_vid = st.text(max_size=3)
_side = st.sampled_from([BUY, SELL, "x"])
_num = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 499_000.0])
garbage_events = st.one_of(
    st.builds(
        Fill,
        ts=_ts,
        client_id=_cid,
        venue_id=_vid,
        exec_id=st.text(max_size=2),
        symbol=st.sampled_from(["BTCUSDT", "ETHUSDT"]),
        side=_side,
        price=st.integers(-5, 600_000),
        qty=st.integers(-3, 50),
        fee=st.integers(-100, 100),
    ),
    st.builds(
        OrderAccepted,
        ts=_ts,
        client_id=_cid,
        venue_id=_vid,
        status=st.sampled_from([NEW, UNTRIGGERED, FILLED, ""]),
    ),
    st.builds(OrderRejected, ts=_ts, client_id=_cid, reason=st.text(max_size=3)),
    st.builds(OrderTriggered, ts=_ts, client_id=_cid, venue_id=_vid),
    st.builds(
        OrderAmended,
        ts=_ts,
        client_id=_cid,
        venue_id=_vid,
        qty=st.integers(-2, 60),
        price=st.integers(-2, 9),
        trigger_price=st.integers(-2, 9),
    ),
    st.builds(OrderCancelled, ts=_ts, client_id=_cid, venue_id=_vid),
    st.builds(OrderExpired, ts=_ts, client_id=_cid, venue_id=_vid),
    st.builds(
        CommandRejected,
        ts=_ts,
        client_id=_cid,
        command=st.sampled_from(["amend", "cancel", "x"]),
        reason=st.just("no"),
    ),
    st.builds(
        FundingPaid,
        ts=_ts,
        symbol=st.sampled_from(["BTCUSDT", "X"]),
        exec_id=st.text(max_size=2),
        amount=st.integers(-1000, 1000),
    ),
    st.builds(
        Liquidated,
        ts=_ts,
        symbol=st.just("BTCUSDT"),
        exec_id=st.text(max_size=2),
        side=_side,
        price=st.integers(-1, 600_000),
        qty=st.integers(-1, 50),
        fee=st.integers(0, 9),
    ),
    st.builds(Halt, ts=_ts, reason=st.just("x")),
    st.builds(Heartbeat, ts=_ts),
    st.builds(
        CandleClosed,
        ts=_ts,
        symbol=st.sampled_from(["BTCUSDT", "BTCUSDT", "ETHUSDT"]),
        timeframe=st.sampled_from(["1m", "1m", "5m"]),
        open_ms=_ts,
        close_ms=_ts,
        open=st.integers(-1, 600_000),
        high=st.integers(-1, 600_000),
        low=st.integers(-1, 600_000),
        close=st.sampled_from([-5, 0, 400_000, 500_000, 600_000]),
        volume=st.integers(0, 9),
        backfill=st.booleans(),
    ),
)
garbage_intents = st.builds(
    Intent, action=st.sampled_from([*ACTIONS, "bogus"]), qty=st.integers(-5, 100),
    equity_pct=_num, risk_pct=_num, stop_distance=_num, reduce_pct=_num, price=_num,
    stop_loss=_num, take_profit=_num, trail_distance=_num, offset=_num,
    style=st.sampled_from(["market", "limit", "twap", "iceberg", "weird", ""]),
    timeout_bars=st.integers(-1, 3), slices=st.integers(-1, 5),
    slice_every_bars=st.integers(-1, 2), slice_every_ms=st.integers(-1, 90_000),
    side=st.sampled_from([BUY, SELL, ""]),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.integers(0, 20), st.lists(garbage_intents, min_size=1, max_size=3)),
    st.lists(garbage_events, min_size=10, max_size=80),
)
def test_garbage_never_crashes_the_fold_nor_breaks_the_books(script, events) -> None:
    s = new_state(started(), Scripted(script), EngineConfig(checkpoint_every=9))
    derived: list[Event] = []
    for ev in events:
        derived.extend(step(s, ev))
    p = s.position
    assert s.balance == INITIAL + p.realized - p.fees - p.funding
    assert all(0 <= o.filled <= o.qty for o in s.book.open.values())
    assert all(o.filled <= o.qty for o in s.book.closed.values())
    restored = restore_state(snapshot_state(s), Scripted(script))
    assert state_hash(restored) == state_hash(s)
    s2, derived2 = refold(events, script, EngineConfig(checkpoint_every=9))
    assert digest(derived2) == digest(derived) and state_hash(s2) == state_hash(s)


def test_state_bytes_with_cached_exec_ids_equal_the_plain_encoding() -> None:
    """``encode_state`` extends the execution ids' bytes as they grow (``ExecIdBytes``);
    they stay those of the plain ``to_data`` image, across msgpack's array header sizes,
    a restored (replaced) id dict and removed ids."""
    import msgspec

    from engine.state import encode_state, to_data

    s = new_state(started(), Scripted(), EngineConfig())
    plain = msgspec.msgpack.Encoder().encode
    ids = s.book.seen_exec
    done = 0
    for n in (0, 1, 15, 16, 17, 300, 65_535, 65_536, 65_600):
        ids.update(dict.fromkeys(f"e{k}" for k in range(done, n)))
        done = n
        for _ in range(2):  # the second time from the cache alone
            assert encode_state(s) == plain(to_data(s)), n
    assert msgspec.msgpack.decode(encode_state(s))["seen_exec"] == list(ids)
    s.book.seen_exec = dict.fromkeys(["x", "y"])  # what a restore does
    assert encode_state(s) == plain(to_data(s))
    del s.book.seen_exec["x"]
    s.book.seen_exec["z"] = None
    assert encode_state(s) == plain(to_data(s))
    del s.book.seen_exec["z"]  # the last one cached: the dict is shorter
    assert encode_state(s) == plain(to_data(s))
