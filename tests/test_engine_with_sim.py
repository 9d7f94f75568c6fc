"""End to end: the engine driven through the backtest loop by the simulated venue.

The loop is the one the runner uses: per candle, the venue's events for that candle
are folded first (and any commands they cause go to the venue at once), then the
candle itself. With an honest venue the engine must never refuse a transition, and
its books must equal the venue's: same position, same wallet, same open orders.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sim.config import SimConfig
from adapters.sim.venue import SimVenue
from engine.config import EngineConfig, ExecutionDefaults, RiskLimits
from engine.core import new_state, step
from engine.events import (
    BUY,
    COMMAND_TYPES,
    DERIVED_TYPES,
    SELL,
    CandleClosed,
    Event,
    Fill,
    Intent,
    SubmitOrder,
    TransitionRejected,
    encode,
)
from engine.hashing import state_hash
from engine.state import EngineState
from tests.test_engine_support import INITIAL, INSTRUMENT, Scripted, started

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto"
REAL_5M = DATA / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"


def backtest(
    candles: list[CandleClosed],
    strategy: Any,
    config: EngineConfig,
    sim: SimConfig,
    timeframe: str = "1m",
) -> tuple[EngineState, SimVenue, list[Event]]:
    """The backtest loop, logging every input and derived event in order."""
    state = new_state(msgspec.structs.replace(started(), timeframe=timeframe), strategy, config)
    venue = SimVenue(INSTRUMENT, sim, INITIAL)
    log: list[Event] = []

    def fold(ev: Event) -> None:
        log.append(ev)
        out = step(state, ev)
        log.extend(out)
        for d in out:
            if type(d) in COMMAND_TYPES:
                for answer in venue.on_command(d):  # type: ignore[arg-type]
                    fold(answer)

    for c in candles:
        for ev in venue.on_candle(c):
            fold(ev)
        fold(c)
    return state, venue, log


def walk(seed: int, n: int, start: int = 500_000) -> list[CandleClosed]:
    """A deterministic random walk of 1m candles (ticks), volatile enough to hit stops."""
    import random

    rnd = random.Random(seed)
    out = []
    price = start
    t0 = 1_700_006_400_000
    for i in range(n):
        o = price
        c = max(o + rnd.randint(-600, 600), 1_000)
        hi = max(o, c) + rnd.randint(0, 300)
        lo = max(min(o, c) - rnd.randint(0, 300), 1)
        out.append(
            CandleClosed(
                t0 + (i + 1) * 60_000,
                "BTCUSDT",
                "1m",
                t0 + i * 60_000,
                t0 + (i + 1) * 60_000,
                o,
                hi,
                lo,
                c,
                rnd.randint(1, 5_000),
            )
        )
        price = c
    return out


def assert_books_agree(state: EngineState, venue: SimVenue, log: list[Event]) -> None:
    refused = [e for e in log if type(e) is TransitionRejected]
    assert refused == []
    assert state.position.qty == venue.position.qty
    assert state.position.entry_value == venue.position.entry_value
    assert state.position.fees == venue.position.fees
    assert state.position.funding == venue.position.funding
    assert state.balance == venue.wallet
    assert list(state.book.open) == list(venue.orders)


intent_pool = st.sampled_from(
    [
        Intent("enter_long", equity_pct=20, stop_loss=0, take_profit=0),
        Intent("enter_short", qty=30),
        Intent("add", qty=10),
        Intent("reduce", reduce_pct=50),
        Intent("exit"),
        Intent("trail_stop", trail_distance=800),
        Intent("set_stop", stop_distance=700),
        Intent("cancel_all"),
        Intent("enter_long", qty=20, style="limit", offset=100, timeout_bars=2),
        Intent("enter_short", qty=12, style="twap", slices=3, slice_every_bars=1),
        Intent("enter_long", qty=9, style="iceberg", slices=3, offset=50),
        Intent("place_limit", side=BUY, price=480_000, qty=5, timeout_bars=3),
        Intent("place_limit", side=SELL, price=520_000, qty=5),
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 10_000),
    st.dictionaries(st.integers(0, 59), st.lists(intent_pool, min_size=1, max_size=2)),
    st.booleans(),
    st.sampled_from(["worse", "better", "path"]),
)
def test_engine_and_sim_venue_agree(seed, script, flip, both_hit) -> None:
    candles = walk(seed, 60)
    config = EngineConfig(
        risk=RiskLimits(allow_flip=flip, max_leverage=5.0),
        execution=ExecutionDefaults(),
        checkpoint_every=25,
    )
    sim = SimConfig(both_hit=both_hit, funding_rate_e8=10_000, funding_interval_ms=600_000)
    state, venue, log = backtest(candles, Scripted(script), config, sim)
    assert_books_agree(state, venue, log)
    # No fill happens on the candle at whose close its order was created: the earliest
    # is the next candle's open, the very time the order was created at.
    created: dict[str, int] = {}
    for e in log:
        if type(e).__name__ == "SubmitOrder":
            created[e.client_id] = e.ts  # type: ignore[union-attr]
        if type(e) is Fill and e.client_id in created:
            assert e.ts >= created[e.client_id]
    # The same inputs refold to the same derived bytes.
    inputs = [e for e in log if type(e) not in DERIVED_TYPES]
    s2 = new_state(started(), Scripted(script), config)
    derived = [d for ev in inputs for d in step(s2, ev)]
    assert [encode(e) for e in derived] == [encode(e) for e in log if type(e) in DERIVED_TYPES]
    assert state_hash(s2) == state_hash(state)


def test_stop_and_take_profit_from_an_entry_round_trip_through_the_venue() -> None:
    candles = walk(3, 200)
    script: dict[int, list[Intent]] = {}
    # Enter long with protection whenever flat, every 5 bars.
    for i in range(0, 200, 5):
        c = candles[i].close
        script[i] = [Intent("enter_long", qty=50, stop_loss=c - 1_500, take_profit=c + 1_500)]
    state, venue, log = backtest(candles, Scripted(script), EngineConfig(), SimConfig())
    assert_books_agree(state, venue, log)
    entries = [e for e in log if type(e) is SubmitOrder and e.purpose == "entry"]
    assert entries and all(e.stop_loss and e.take_profit for e in entries)  # attached
    exits = [e for e in log if type(e) is Fill and e.side == SELL]
    assert exits, "some protective order must have filled"
    armed = {e.client_id[-3:] for e in exits}
    assert armed == {"-sl", "-tp"}  # both kinds fired, as the venue armed them


def _read_real(path: Path, n: int) -> list[CandleClosed]:
    out = []
    with path.open() as fh:
        for row in csv.DictReader(fh):
            ms = int(datetime.fromisoformat(row["timestamp"]).timestamp() * 1000)
            out.append(
                CandleClosed(
                    ms + 300_000,
                    "BTCUSDT",
                    "5m",
                    ms,
                    ms + 300_000,
                    round(float(row["open"]) * 10),
                    round(float(row["high"]) * 10),
                    round(float(row["low"]) * 10),
                    round(float(row["close"]) * 10),
                    round(float(row["volume"]) * 1000),
                )
            )
            if len(out) == n:
                break
    return out


class _Swing:
    """Long when the close rises 3 bars running, out after 12 bars: trades real data a lot."""

    def __init__(self) -> None:
        self.closes: list[int] = []

    def on_candle(self, candle: CandleClosed, ctx: Any) -> list[Intent]:
        self.closes = [*self.closes[-3:], candle.close]
        c = self.closes
        if ctx.position_qty == 0 and len(c) == 4 and c[0] < c[1] < c[2] < c[3]:
            return [Intent("enter_long", equity_pct=50, stop_loss=c[3] - 3_000)]
        if ctx.position_qty and ctx.bars_in_trade >= 12:
            return [Intent("exit")]
        return []

    def is_warm(self) -> bool:
        return len(self.closes) >= 4

    def snapshot(self) -> Any:
        return list(self.closes)

    def restore(self, state: Any) -> None:
        self.closes = list(state)


@pytest.mark.skipif(not REAL_5M.exists(), reason=f"real data not found at {REAL_5M}")
def test_real_bybit_5m_session_books_agree_and_repeat() -> None:
    candles = _read_real(REAL_5M, 3_000)

    def run() -> tuple[EngineState, SimVenue, list[Event]]:
        return backtest(candles, _Swing(), EngineConfig(), SimConfig(), timeframe="5m")

    state, venue, log = run()
    assert_books_agree(state, venue, log)
    assert sum(1 for e in log if type(e) is Fill) > 20
    h = hashlib.sha256(b"".join(encode(e) for e in log)).hexdigest()
    state2, _, log2 = run()
    assert hashlib.sha256(b"".join(encode(e) for e in log2)).hexdigest() == h
    assert state_hash(state2) == state_hash(state)
