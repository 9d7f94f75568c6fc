"""The backtest fast path (``replay.fastpath``) writes the per-candle path's log byte for byte.

Each bulk form is held equal to its incremental form (candle bytes to msgspec, SMA
totals and ``seek`` to ``SMA.update``, ``exact_cross_states`` to the cross updater,
``AccountView.bulk_curve`` to ``apply``); then whole sessions are compared record by
record (same events, seqs, fingerprint) for every example card on real and synthetic
data and for generated cards and data, and ``replay verify`` passes on fast sessions.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.historical import CandleSeries, generate, load_candles
from adapters.historical.bulk import encode_candles
from engine.conditions import exact_cross_states
from engine.events import CandleClosed, Fill, SessionStarted, SubmitOrder, encode
from engine.indicators.averages import SMA
from engine.instrument import BTCUSDT, Instrument
from eventstore import EventStore
from projections.account import AccountView
from replay.backtest import BacktestRequest, execute
from replay.cards import load_card
from replay.fastpath import BulkRun
from replay.verify import verify_session

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "crypto"
MINUTE_FILE = DATA / "binanceus_spot_BTCUSDT_1m_20230301_20230321.csv"
CARDS = sorted((ROOT / "ideacards").glob("*.yaml"))
BTC = Instrument(BTCUSDT)


def _real_series() -> CandleSeries:
    if not MINUTE_FILE.exists():
        pytest.skip(f"real candle data absent: {MINUTE_FILE}")
    return load_candles(MINUTE_FILE, BTC, round_prices=True)


def _series_from(cols: dict[str, list[int]]) -> CandleSeries:
    a = {k: np.array(v, np.int64) for k, v in cols.items()}
    return CandleSeries(
        BTC, "1m", open_ms=a["open_ms"], close_ms=a["close_ms"], open=a["open"], high=a["high"],
        low=a["low"], close=a["close"], volume=a["volume"], turnover=a["turnover"],
    )  # fmt: skip


# ------------------------------------------------------------------ bulk forms


def test_bulk_candle_bytes_equal_msgspec_on_real_and_synthetic_data() -> None:
    for series in (_real_series(), generate(seed=3, n=5000, instrument=BTC)):
        enc = encode_candles(series)
        assert enc.rows(0, len(enc)) == [encode(c) for c in series.events()]


_INT64 = st.integers(-(2**63), 2**63 - 1)
_EDGES = st.sampled_from(
    [
        0,
        1,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2**32 - 1,
        2**32,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        -(2**31),
        -(2**31) - 1,
        2**63 - 1,
        -(2**63),
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_bulk_candle_bytes_equal_msgspec_on_any_integers(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 40))
    cols = {
        name: data.draw(st.lists(st.one_of(_INT64, _EDGES), min_size=n, max_size=n))
        for name in ("open_ms", "close_ms", "open", "high", "low", "close", "volume", "turnover")
    }
    series = _series_from(cols)
    enc = encode_candles(series)
    assert enc.rows(0, n) == [encode(c) for c in series.events()]
    # a uniform-width chunk (the fixed-layout branch) next to mixed ones
    same = _series_from({k: [v[0]] * n for k, v in cols.items()})
    assert encode_candles(same).rows(0, n) == [encode(c) for c in same.events()]


def _closes(seed: int, n: int) -> list[int]:
    rng = random.Random(seed)
    x, out = 500_000, []
    for _ in range(n):
        x = max(1, x + rng.choice([-3, -1, 0, 0, 1, 2, 40, -40]))
        out.append(x)
    return out


@pytest.mark.parametrize("period", [1, 2, 10, 30, 200])
def test_sma_totals_and_seek_equal_update(period: int) -> None:
    real = _real_series().close.tolist()[:6000]
    for closes in (real, _closes(period, 3000)):
        totals = SMA.totals(np.array(closes, np.int64), period).tolist()
        sma, other = SMA(period), SMA(period)
        for k, c in enumerate(closes):
            sma.update(0, c, c, c, c, 1)
            assert sma.total == totals[k]
            if k % 97 == 0 or k < period + 2:
                other.seek(closes[max(0, k + 1 - period) : k + 1], k + 1)
                assert other.snapshot() == sma.snapshot()


def _cross_card(tmp_path: Path, fast: int, slow: int) -> Path:
    card = tmp_path / "cross.yaml"
    card.write_text(
        "name: cross\nsymbol: BTCUSDT\nfeatures:\n"
        f"  f: {{indicator: sma, period: {fast}}}\n  s: {{indicator: sma, period: {slow}}}\n"
        "blocks:\n  - name: up\n    when: {cross_above: [f, s]}\n"
        "    then: {enter_long: {qty: 0.01}}\n"
    )
    return card


@pytest.mark.parametrize(("fast", "slow"), [(2, 3), (10, 30), (7, 3)])
def test_exact_cross_states_equal_the_updater(tmp_path: Path, fast: int, slow: int) -> None:
    from engine.strategy import MarketContext

    plan = load_card(_cross_card(tmp_path, fast, slow)).new_strategy(BTC)
    closes = _real_series().close.tolist()[:4000] + _closes(fast * slow, 2000)
    cond = plan._cond  # type: ignore[attr-defined]
    (sa, sb, last_slot, d_slot) = cond.crosses[0]
    got: list[tuple[int, int]] = []
    ctx = MarketContext()
    for k, c in enumerate(closes):
        plan.on_candle(CandleClosed(k, "BTCUSDT", "1m", k, k, c, c, c, c, 1), ctx)
        if plan.is_warm():
            got.append((cond.slots[last_slot], cond.slots[d_slot]))
    warm = len(closes) - len(got)
    arr = np.array(closes, np.int64)
    x = SMA.totals(arr, sa.period)[warm:] * sb.divisor
    y = SMA.totals(arr, sb.period)[warm:] * sa.divisor
    last, d = exact_cross_states(x, y)
    assert list(zip(last.tolist(), d.tolist())) == got
    assert any(v != 0 for _, v in got)  # crosses happened: the comparison means something


def test_bulk_curve_equals_apply() -> None:
    series = generate(seed=5, n=400, instrument=BTC)
    events = list(series.events())
    started = SessionStarted(
        ts=0, session_id="m", mode="backtest", card_text="", card_hash="", venue="sim",
        instrument=BTCUSDT, version="0", initial_balance=10**12,
    )  # fmt: skip
    views = [AccountView(), AccountView()]
    for v in views:
        v.apply(started)
        v.apply(events[0])
    s = series
    views[0].bulk_curve(
        s.close_ms[1:], s.open[1:], s.high[1:], s.low[1:], s.close[1:], s.volume[1:]
    )
    prev = 0  # long, flat, short, flat: quiet stretches in each
    for side, at in (("Buy", 100), ("Sell", 200), ("Sell", 300), ("Buy", 380)):
        cut, prev = slice(prev + 1, at), at
        views[0].mark_quiet(at - cut.start, int(s.close_ms[at - 1]), int(s.close[at - 1]))
        for c in events[cut]:
            views[1].apply(c)
        cid = f"c{at}"  # the book books fills of orders it saw submitted
        order = SubmitOrder(events[at].ts, cid, "BTCUSDT", side, "Market", 500)
        fill = Fill(events[at].ts, cid, "v", f"e{at}", "BTCUSDT", side, events[at].close, 500, 7)
        for v in views:
            v.apply(order)
            v.apply(fill)
            v.apply(events[at])  # a candle through apply while the curve is in bulk
    views[0].end_bulk()
    columns = ("curve_ts", "curve_equity", "curve_close", "curve_qty", "curve_open")
    for name in (*columns, "curve_high", "curve_low", "curve_volume"):
        a, b = (getattr(v, name).array().tolist() for v in views)
        assert a == b and len(a) == 381
    for name in ("candles", "last_close_ms", "last_price", "equity"):
        assert getattr(views[0], name) == getattr(views[1], name)
    assert len(set(views[1].curve_qty.array().tolist())) == 3
    assert len(set(views[1].curve_equity.array().tolist())) > 90  # marked at every close


# ------------------------------------------------------------------ whole sessions


def _records(store: Path, sid: str) -> tuple[list[tuple[int, bytes]], str]:
    with EventStore(store) as es:
        stream = es.stream(sid)
        return list(stream.read()), stream.fingerprint


def _both(tmp_path: Path, card: Path, **fields: object) -> list[tuple[int, bytes]]:
    """Run ``card`` fast and per candle; assert the logs are the same bytes."""
    logs = []
    for fast in (True, False):
        store = tmp_path / ("fast" if fast else "slow")
        req = BacktestRequest(
            card=card, store=store, session="s", show_progress=False, write_report=False,
            fast=fast, **fields,  # type: ignore[arg-type]
        )  # fmt: skip
        execute(req)
        logs.append(_records(store, "s"))
    (fast_records, fast_fp), (slow_records, slow_fp) = logs
    assert len(fast_records) == len(slow_records)
    for (s1, r1), (s2, r2) in zip(fast_records, slow_records):
        assert (s1, r1) == (s2, r2), f"first difference at seq {s1}"
    assert fast_fp == slow_fp
    return fast_records


def _takes_fast_path(card: Path, series: CandleSeries, timeframe: str | None = None) -> bool:
    return BulkRun.for_card(load_card(card, timeframe=timeframe), series) is not None


@pytest.mark.parametrize("card", CARDS, ids=[c.stem for c in CARDS])
def test_example_cards_same_log_on_synthetic_data(tmp_path: Path, card: Path) -> None:
    _both(tmp_path, card, n_candles=12_000, seed=11)


@pytest.mark.parametrize("card", CARDS, ids=[c.stem for c in CARDS])
def test_example_cards_same_log_on_real_minutes(tmp_path: Path, card: Path) -> None:
    _real_series()
    _both(tmp_path, card, data=MINUTE_FILE, round_prices=True)


def test_the_default_card_takes_the_fast_path_and_verifies(tmp_path: Path) -> None:
    card = ROOT / "ideacards" / "ma_cross.yaml"
    series = _real_series()
    assert _takes_fast_path(card, series)
    records = _both(tmp_path, card, data=MINUTE_FILE, round_prices=True)
    assert len(records) > len(series)
    with EventStore(tmp_path / "fast") as es:
        result = verify_session(es, "s")
    assert result.ok, result.divergence


_BLOCK_WHEN = [
    "{{cross_above: [{a}, {b}]}}",
    "{{cross_below: [{a}, {b}]}}",
    "{{all: [flat, {{cross_above: [{a}, {b}]}}]}}",
    "{{all: [long, {{cross_below: [{a}, {b}]}}]}}",
    "{{all: [short, {{cross_above: [{a}, {b}]}}]}}",
    "{{any: [{{cross_above: [{a}, {b}]}}, {{cross_below: [{b}, {a}]}}]}}",
    '{{all: ["close > 0", {{cross_below: [{a}, {b}]}}]}}',
]
_THEN = [
    "{{enter_long: {{qty: {q}}}}}",
    "{{enter_short: {{qty: {q}}}}}",
    "exit",
    "{{enter_long: {{equity_pct: 30}}}}",
    "{{enter_short: {{equity_pct: 60}}}}",
    "{{reduce: {{pct: 50}}}}",
]


@st.composite
def _cards(draw: st.DrawFn) -> str:
    periods = draw(st.lists(st.integers(1, 40), min_size=2, max_size=3))
    names = [f"f{i}" for i in range(len(periods))]
    lines = ["name: gen", "symbol: BTCUSDT", "features:"]
    lines += [f"  {n}: {{indicator: sma, period: {p}}}" for n, p in zip(names, periods)]
    lines.append("blocks:")
    for k in range(draw(st.integers(1, 3))):
        a, b = draw(st.permutations(names))[:2]
        when = draw(st.sampled_from(_BLOCK_WHEN)).format(a=a, b=b)
        q = draw(st.sampled_from(["0.001", "0.05", "1"]))
        then = draw(st.sampled_from(_THEN)).format(q=q)
        lines += [f"  - name: b{k}", f"    when: {when}", f"    then: {then}"]
    flip = draw(st.booleans())
    limit = draw(st.sampled_from([0, 0, 1]))
    lines.append(f"risk: {{allow_flip: {str(flip).lower()}, max_leverage: 20, "
                 f"daily_loss_limit_pct: {limit}}}")  # fmt: skip
    every = draw(st.sampled_from([7, 100, 10000]))
    lines.append(f"execution: {{checkpoint_every: {every}}}")
    funding = draw(st.sampled_from(["0", "0.01%", "-0.3%"]))
    lev = draw(st.sampled_from([1, 5, 50]))
    slip = draw(st.integers(0, 2))
    lines.append(f"sim: {{funding_rate: {funding}, leverage: {lev}, slippage_ticks: {slip}, "
                 "funding_interval: 1h}")  # fmt: skip
    return "\n".join(lines) + "\n"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=_cards(), seed=st.integers(0, 10_000), n=st.integers(60, 2500))
def test_generated_cards_and_data_same_log(tmp_path: Path, text: str, seed: int, n: int) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example (tmp_path is shared)
    card = folder / "card.yaml"
    card.write_text(text)
    series = generate(seed=seed, n=n, instrument=BTC)
    _both(folder, card, n_candles=n, seed=seed, balance="50000")
    if not _takes_fast_path(card, series):  # every generated card is one the fast path takes
        raise AssertionError(f"the fast path refused this card:\n{text}")


@pytest.mark.parametrize(
    ("limit", "funding", "rate"),
    [(0, "8h", "0.01%"), (1, "8h", "0.01%"), (0, "5h", "0.01%"), (0, "8h", "0")],
)
def test_day_starts_rolled_in_bulk_same_log(
    tmp_path: Path, limit: int, funding: str, rate: str
) -> None:
    """A quiet stretch over UTC day starts rolls the day as ``engine.core.step`` does at
    each start (the day's equity marked at the close before it, the halt lifted): checkpoints
    every 7 candles hash the state, over 12 days of positions held and halts lifted (5h
    funding: positions held over day starts that are not funding times; a zero rate: over
    funding times too)."""
    card = tmp_path / "card.yaml"
    card.write_text(
        "name: days\nsymbol: BTCUSDT\nfeatures:\n"
        "  f: {indicator: sma, period: 30}\n  s: {indicator: sma, period: 400}\n"
        "blocks:\n"
        "  - {name: up, when: {cross_above: [f, s]}, then: {enter_long: {equity_pct: 300}}}\n"
        "  - {name: dn, when: {cross_below: [f, s]}, then: exit}\n"
        f"risk: {{max_leverage: 20, daily_loss_limit_pct: {limit}}}\n"
        "execution: {checkpoint_every: 7}\n"
        f"sim: {{leverage: 20, funding_interval: {funding}, funding_rate: {rate}}}\n"
    )
    n = 12 * 1440
    series = generate(seed=11, n=n, instrument=BTC)
    bulk = BulkRun.for_card(load_card(card), series)
    assert bulk is not None
    starts = np.flatnonzero(np.diff(series.close_ms // 86_400_000)) + 1
    assert (bulk._next_active[starts] > starts).any()  # day starts inside quiet stretches
    records = _both(tmp_path, card, n_candles=n, seed=11, balance="50000")
    assert len(records) > n


def test_an_interrupted_fast_run_stops_between_candles_and_verifies(tmp_path: Path) -> None:
    import os
    import signal

    from replay.session import SessionInterrupted, run_backtest

    card = load_card(ROOT / "ideacards" / "ma_cross.yaml")
    series = generate(seed=2, n=40_000, instrument=BTC)
    bulk = BulkRun.for_card(card, series)
    assert bulk is not None
    asked: list[int] = []

    def progress(done: int) -> None:
        asked.append(done)
        if len(asked) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # the run stops after this candle

    with EventStore(tmp_path / "runs") as store:
        with pytest.raises(SessionInterrupted):
            run_backtest(
                card, series.events(), BTC, store, session_id="cut", initial_balance=10**12,
                first_open_ms=int(series.open_ms[0]), progress=progress, progress_every=10_000,
                bulk=bulk,
            )  # fmt: skip
        result = verify_session(store, "cut")
        assert result.ok, result.divergence
        assert store.stream("cut").info().meta["status"] == "interrupted"
        n_candles = sum(1 for _, raw in store.stream("cut").read() if b"CandleClosed" in raw)
    assert asked[0] <= n_candles < len(series)
