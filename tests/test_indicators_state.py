"""Indicator state: snapshot/restore is bit-identical, warm-up flips exactly when documented."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.indicators import INDICATORS, IndicatorError, make_indicator
from tests.test_indicators_reference import CASES, IDS, Candles, candle_series, random_candles, run


def _slice(d: Candles, a: int, b: int | None = None) -> Candles:
    return {k: v[a:b] for k, v in d.items()}


def assert_bit_identical(got: np.ndarray, want: np.ndarray) -> None:
    """Equal NaN positions and equal IEEE-754 bits everywhere else."""
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint64), want[~nan].view(np.uint64))


ENCODINGS: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    "msgpack": (msgspec.msgpack.encode, msgspec.msgpack.decode),
    "json": (msgspec.json.encode, msgspec.json.decode),  # NaN travels as null
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize(("name", "params", "ref", "tol"), CASES, ids=IDS)
@settings(max_examples=30, deadline=None)
@given(d=candle_series(min_size=2, max_size=200), cut=st.floats(0, 1))
def test_restore_mid_series_continues_bit_identical(
    encoding: str, name: str, params: dict[str, Any], ref: Any, tol: str, d: Candles, cut: float
) -> None:
    encode, decode = ENCODINGS[encoding]
    k = int(cut * (len(d["c"]) - 1))
    original = make_indicator(name, params)
    run(original, _slice(d, 0, k))
    blob = encode(original.snapshot())
    # The uninterrupted run goes on with the same object: snapshot() must not disturb it.
    want = run(original, _slice(d, k))
    restored = make_indicator(name, params)
    restored.restore(decode(blob))
    got = run(restored, _slice(d, k))
    assert_bit_identical(got, want)
    assert restored.ready == original.ready
    assert encode(restored.snapshot()) == encode(original.snapshot())


def test_snapshot_is_a_copy_not_a_view() -> None:
    d = random_candles(seed=7, n=50, base=1000, spread=20, interval=60_000)
    sma = make_indicator("sma", {"period": 5})
    run(sma, d)
    snap = sma.snapshot()
    frozen = msgspec.msgpack.encode(snap)
    run(sma, d)
    assert msgspec.msgpack.encode(snap) == frozen


def test_restore_rejects_another_indicators_state() -> None:
    ema = make_indicator("ema", {"period": 5})
    with pytest.raises(IndicatorError, match="EMA"):
        ema.restore(make_indicator("sma", {"period": 5}).snapshot())


def test_restore_rejects_a_buffer_of_the_wrong_size() -> None:
    small, big = make_indicator("sma", {"period": 5}), make_indicator("sma", {"period": 6})
    with pytest.raises(IndicatorError, match="_buf"):
        big.restore(small.snapshot())


# --------------------------------------------------------------------------- warm-up


def documented_warmup(name: str, p: dict[str, Any]) -> int:
    """Candles until ready, as each class's docstring states it."""
    if name in ("rsi", "roc"):
        return int(p["period"]) + 1
    if name == "macd":
        return int(p["slow"]) + int(p["signal"]) - 1
    if name == "vwap":
        return 1
    return int(p["period"])


@st.composite
def params_for(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from([n for n in INDICATORS if n != "swing"]))
    if name == "macd":
        fast = draw(st.integers(1, 20))
        slow = draw(st.integers(fast + 1, 40))
        return name, {"fast": fast, "slow": slow, "signal": draw(st.integers(1, 20))}
    if name == "vwap":
        return name, {}
    return name, {"period": draw(st.integers(1, 60))}


@settings(max_examples=150, deadline=None)
@given(spec=params_for(), seed=st.integers(0, 2**32 - 1))
def test_ready_flips_exactly_at_the_documented_candle(
    spec: tuple[str, dict[str, Any]], seed: int
) -> None:
    name, params = spec
    ind = make_indicator(name, params)
    need = documented_warmup(name, params)
    assert ind.warmup == need
    d = random_candles(seed=seed, n=need + 5, base=10_000, spread=30, interval=60_000)
    rows = zip(*(d[k].tolist() for k in ("ts", "o", "h", "l", "c", "v")))
    for i, row in enumerate(rows, start=1):
        ind.update(*row)
        assert ind.ready == (i >= need), f"{name}{params} after {i} candles"
        assert np.isnan(ind.value) != ind.ready


@settings(max_examples=40, deadline=None)
@given(d=candle_series(max_size=120), left=st.integers(1, 4), right=st.integers(0, 4))
def test_swing_is_ready_once_both_a_high_and_a_low_are_confirmed(
    d: Candles, left: int, right: int
) -> None:
    swing = make_indicator("swing", {"left": left, "right": right})
    out = run(swing, d, ("high", "low", "value"))
    both = ~np.isnan(out[:, 0]) & ~np.isnan(out[:, 1])
    assert np.array_equal(~np.isnan(out[:, 2]), both)
    assert swing.ready == bool(both[-1])


# --------------------------------------------------------------------------- RSI edges


def _rsi_of(closes: list[int], period: int = 3) -> float:
    rsi = make_indicator("rsi", {"period": period})
    for i, c in enumerate(closes):
        rsi.update(60_000 * (i + 1), c, c, c, c, 1)
    return rsi.value


def test_rsi_of_a_flat_price_is_50_and_of_one_way_moves_is_100_or_0() -> None:
    assert _rsi_of([100] * 6) == 50.0
    assert _rsi_of([100, 101, 103, 104, 110, 111]) == 100.0
    assert _rsi_of([111, 110, 104, 103, 101, 100]) == 0.0
