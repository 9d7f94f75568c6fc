"""Properties of compiled cards: no lookahead (strategy alone and through the backtest
loop with the engine and the simulated venue), multi-timeframe visibility, and
snapshot/restore mid-series. Every property runs for every example card."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sim.venue import SimVenue
from engine.core import new_state, restore_state, snapshot_state, step
from engine.events import (
    AmendOrder,
    CancelOrder,
    CandleClosed,
    Event,
    Intent,
    IntentEmitted,
    SessionStarted,
    SubmitOrder,
    encode,
)
from engine.hashing import state_hash
from engine.instrument import BTCUSDT
from engine.plan import CompiledPlan
from engine.strategy import MarketContext
from engine.timeframes import Resampler
from replay.cards import LoadedCard, load_card
from tests.test_ideacard_helpers import (
    CARDS,
    CSV_5M,
    INSTRUMENT,
    backtest,
    candle,
    drive,
    real_5m,
    synthetic,
)

CARD_NAMES = sorted(p.stem for p in CARDS.glob("*.yaml"))
N = 900  # long enough for mtf_trend (50 one-hour bars) to get warm


def _card(name: str) -> LoadedCard:
    return load_card(CARDS / f"{name}.yaml")


def _base(offset: int, seed: int) -> list[CandleClosed]:
    """N consecutive candles: a window of the real file if present, else a random walk."""
    if CSV_5M.exists():
        cs = real_5m()
        start = offset % (len(cs) - N)
        return list(cs[start : start + N])
    return synthetic(seed, N)


def _altered(base: list[CandleClosed], t: int, seed: int) -> list[CandleClosed]:
    """``base`` up to and including index t, then arbitrary different candles."""
    tail = synthetic(seed, len(base) - t - 1, start_ms=base[t].close_ms, price=base[t].close)
    return base[: t + 1] + tail


def _encoded(pairs: list[tuple[int, Intent]], ts_of: list[CandleClosed], upto: int) -> list[bytes]:
    return [encode(IntentEmitted(ts_of[i].ts, it)) for i, it in pairs if i <= upto]


def test_there_are_example_cards() -> None:
    assert {"ma_cross", "rsi_reversion", "breakout_scaling", "mtf_trend", "confirmation"} <= set(
        CARD_NAMES
    )
    assert "iceberg_entry" in CARD_NAMES and "detector_driven" in CARD_NAMES


@pytest.mark.parametrize("name", CARD_NAMES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offset=st.integers(0, 10**6),
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(0, N - 2),
    tail_seed=st.integers(0, 2**32 - 1),
)
def test_no_lookahead_strategy_alone(
    name: str, offset: int, seed: int, cut: int, tail_seed: int
) -> None:
    card = _card(name)
    base = _base(offset, seed)
    other = _altered(base, cut, tail_seed)
    a = drive(card.new_strategy(INSTRUMENT), base)
    b = drive(card.new_strategy(INSTRUMENT), other)
    assert _encoded(a, base, cut) == _encoded(b, other, cut)


@pytest.mark.parametrize("name", CARD_NAMES)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offset=st.integers(0, 10**6),
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(0, N - 2),
    tail_seed=st.integers(0, 2**32 - 1),
)
def test_no_lookahead_through_engine_and_venue(
    name: str, offset: int, seed: int, cut: int, tail_seed: int
) -> None:
    """Every event logged up to candle t (intents, orders, fills) is byte-identical."""
    card = _card(name)
    base = _base(offset, seed)
    other = _altered(base, cut, tail_seed)
    assert backtest(card, base)[: cut + 1] == backtest(card, other)[: cut + 1]


def test_no_lookahead_is_not_vacuous() -> None:
    """On a fixed window every card trades before the cut, so the properties above bite."""
    base = _base(0, 1)
    for name in CARD_NAMES:
        logs = backtest(_card(name), base)
        emitted = [
            b
            for log in logs[: N - 100]
            for b in log
            if msgspec.msgpack.decode(b)[0] == "IntentEmitted"
        ]
        assert emitted, f"{name} emitted no intent in {N - 100} candles"


@pytest.mark.parametrize("name", CARD_NAMES)
def test_snapshot_restore_mid_series(name: str) -> None:
    card = _card(name)
    cs = list(real_5m()[:2000]) if CSV_5M.exists() else synthetic(7, 2000)
    k = 1300
    whole = card.new_strategy(INSTRUMENT)
    ctx = MarketContext()
    first = drive(whole, cs[:k], ctx)
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(whole.snapshot()))
    ctx_copy = msgspec.structs.replace(ctx)
    rest_whole = drive(whole, cs[k:], ctx, k)
    restored = card.new_strategy(INSTRUMENT)
    restored.restore(state)
    assert restored.is_warm()
    rest_restored = drive(restored, cs[k:], ctx_copy, k)
    assert first and rest_whole, "the card should trade on both sides of the snapshot"
    assert _encoded(rest_whole, cs, len(cs)) == _encoded(rest_restored, cs, len(cs))
    assert msgspec.msgpack.encode(whole.snapshot()) == msgspec.msgpack.encode(restored.snapshot())


def test_slow_features_change_only_on_the_candle_closing_their_bar() -> None:
    card = _card("mtf_trend")
    plan = card.new_strategy(INSTRUMENT)
    assert isinstance(plan, CompiledPlan)
    cs = list(real_5m()[:3000]) if CSV_5M.exists() else synthetic(3, 3000)
    names = ("trend_fast", "trend_slow", "close_1h", "high_1h", "volume_1h")
    prev = None
    changes = 0
    for c in cs:
        plan.on_candle(c, MarketContext())
        now = tuple(plan.value(n) for n in names)
        if prev is not None and now != prev:
            assert c.close_ms % 3_600_000 == 0, f"slow value changed mid-hour at {c.close_ms}"
            changes += 1
        prev = now
    assert changes > 200


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 200),
    drop=st.lists(st.integers(0, 199), max_size=5),
    tf=st.sampled_from([("15m", 900_000), ("1h", 3_600_000)]),
)
def test_resampler_matches_an_independent_aggregation(
    seed: int, n: int, drop: list[int], tf: tuple[str, int]
) -> None:
    """Complete slow bars only, each visible on the candle closing it, equal to a groupby."""
    name, ms = tf
    cs = [
        c
        for i, c in enumerate(
            synthetic(seed, n, start_ms=1_700_000_100_000 - 1_700_000_100_000 % 300_000)
        )
        if i not in drop
    ]
    seen: list[tuple[int, int, int, int, int, int]] = []
    r = Resampler(name, lambda ts, o, h, lo, c, v: seen.append((ts, o, h, lo, c, v)))
    for c in cs:
        closed = r.update(c.open_ms, c.close_ms, c.open, c.high, c.low, c.close, c.volume)
        assert closed == (bool(seen) and seen[-1][0] == c.close_ms)
    expected = []
    for start, group in itertools.groupby(cs, key=lambda c: c.open_ms - c.open_ms % ms):
        g = list(group)
        contiguous = all(b.open_ms == a.close_ms for a, b in itertools.pairwise(g))
        if g[0].open_ms == start and g[-1].close_ms == start + ms and contiguous:
            expected.append(
                (
                    start + ms,
                    g[0].open,
                    max(c.high for c in g),
                    min(c.low for c in g),
                    g[-1].close,
                    sum(c.volume for c in g),
                )
            )
    assert seen == expected


def test_a_partial_first_hour_is_dropped() -> None:
    start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    seen: list[int] = []
    r = Resampler("1h", lambda ts, *_: seen.append(ts))
    for i in range(1, 24):  # starts at :05, so the first hour is incomplete
        c = candle(start + i * 300_000, 300_000, 10, 12, 9, 11, 1, "5m")
        r.update(c.open_ms, c.close_ms, c.open, c.high, c.low, c.close, c.volume)
    assert seen == [start + 2 * 3_600_000]


@pytest.mark.parametrize("name", ["mtf_trend", "confirmation", "detector_driven"])
def test_engine_snapshot_carries_the_card_state(name: str) -> None:
    """engine.core.snapshot_state/restore_state mid-session: the restored engine derives
    exactly what the uninterrupted one does from the same inputs."""
    card = _card(name)
    cs = list(real_5m()[:1600]) if CSV_5M.exists() else synthetic(11, 1600)
    started = SessionStarted(
        cs[0].open_ms, "snap-session", "backtest", card.text, card.hash, "sim", BTCUSDT,
        "test", 100_000 * 10**8, card.source, "5m",
    )  # fmt: skip
    state = new_state(started, card.new_strategy(INSTRUMENT), card.engine_config)
    venue = SimVenue(INSTRUMENT, card.sim_config, 100_000 * 10**8)
    twin = None
    compared = 0

    def fold(ev: Event) -> None:
        nonlocal compared
        out = step(state, ev)
        if twin is not None:
            assert [encode(e) for e in step(twin, ev)] == [encode(e) for e in out]
            compared += len(out)
        for d in out:
            if isinstance(d, SubmitOrder | AmendOrder | CancelOrder):
                for answer in venue.on_command(d):
                    fold(answer)

    for i, c in enumerate(cs):
        if i == 1000:
            twin = restore_state(snapshot_state(state), card.new_strategy(INSTRUMENT))
        for ev in venue.on_candle(c):
            fold(ev)
        fold(c)
    assert compared > 0
    assert state_hash(state) == state_hash(twin)  # type: ignore[arg-type]


_DIGEST_SCRIPT = """
import hashlib, sys
from engine.events import IntentEmitted, encode
from replay.cards import load_card
from tests.test_ideacard_helpers import CARDS, INSTRUMENT, drive, synthetic
h = hashlib.sha256()
for name in sys.argv[1:]:
    cs = synthetic(5, 1500)
    for i, it in drive(load_card(CARDS / f"{name}.yaml").new_strategy(INSTRUMENT), cs):
        h.update(encode(IntentEmitted(cs[i].ts, it)))
print(h.hexdigest())
"""


def test_intents_do_not_depend_on_the_hash_seed() -> None:
    repo = Path(__file__).resolve().parents[1]
    digests = set()
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT, *CARD_NAMES],
            cwd=repo, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        digests.add(out.stdout.strip())
    assert len(digests) == 1 and len(next(iter(digests))) == 64
