"""No lookahead (swing detector and every other indicator) and VWAP's UTC-day sessions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.indicators import VWAP, Swing, make_indicator, session_day
from tests.test_indicators_reference import CASES, IDS, Candles, candle_series, run

DAY_MS = 86_400_000


def _with_future_replaced(d: Candles, t: int, other: Candles) -> Candles:
    """Candles 0..t of d, then ``other``'s candles (same times) after t."""
    out = {k: v.copy() for k, v in d.items()}
    for k in ("o", "h", "l", "c", "v"):
        out[k][t + 1 :] = other[k][t + 1 : len(d[k])]
    return out


@pytest.mark.parametrize(("name", "params", "ref", "tol"), CASES, ids=IDS)
@settings(max_examples=30, deadline=None)
@given(
    d=candle_series(min_size=2, max_size=150),
    other=candle_series(min_size=150, max_size=150),
    cut=st.floats(0, 1),
)
def test_changing_the_future_never_changes_the_past(
    name: str, params: dict[str, Any], ref: Any, tol: str, d: Candles, other: Candles, cut: float
) -> None:
    t = int(cut * (len(d["c"]) - 1))
    a = run(make_indicator(name, params), d)
    b = run(make_indicator(name, params), _with_future_replaced(d, t, other))
    assert np.array_equal(a[: t + 1], b[: t + 1], equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(d=candle_series(max_size=200), left=st.integers(1, 5), right=st.integers(0, 5))
def test_swing_is_reported_only_right_bars_after_its_pivot(
    d: Candles, left: int, right: int
) -> None:
    out = run(Swing(left=left, right=right), d, ("high", "low", "high_ago", "low_ago"))
    for col in (2, 3):
        ago = out[:, col][~np.isnan(out[:, col])]
        assert (ago >= right).all()
    # The reported price is the high (low) of the bar it names.
    n = np.arange(len(d["c"]))
    for price, ago, key in ((0, 2, "h"), (1, 3, "l")):
        known = ~np.isnan(out[:, ago])
        bars = n[known] - out[known, ago].astype(int)
        assert np.array_equal(out[known, price], d[key][bars].astype(float))


def _feed(ind: Any, highs: list[int], lows: list[int]) -> None:
    for i, (h, lo) in enumerate(zip(highs, lows)):
        ind.update(60_000 * (i + 1), lo, h, lo, lo, 1)


def test_swing_flat_top_pivot_is_its_first_bar_known_right_bars_later() -> None:
    swing = Swing(left=2, right=2)
    highs = [10, 11, 12, 12, 11, 10]
    lows = [5, 6, 7, 7, 6, 5]
    _feed(swing, highs[:4], lows[:4])
    assert np.isnan(swing.get("high"))  # bar 2 is a pivot only once bar 4 is seen
    swing.update(5 * 60_000, 6, highs[4], lows[4], 6, 1)
    assert swing.get("high") == 12.0
    assert swing.get("high_ago") == 2.0  # the first 12 (bar 2), reported at bar 4


def test_swing_low_needs_strictly_higher_lows_on_its_left() -> None:
    fresh = Swing(left=1, right=1)
    _feed(fresh, [9, 9, 9, 9], [5, 5, 6, 7])
    assert np.isnan(fresh.get("low"))  # 5 then 5: the second is not below the first
    fresh = Swing(left=1, right=1)
    _feed(fresh, [9, 9, 9, 9], [6, 5, 5, 7])
    assert fresh.get("low") == 5.0 and fresh.get("low_ago") == 2.0


# --------------------------------------------------------------------------- VWAP


def test_session_day_puts_a_bar_closing_at_midnight_in_the_day_it_ends() -> None:
    assert session_day(DAY_MS) == 0  # 23:55-00:00 on day 0
    assert session_day(DAY_MS + 1) == 1
    assert session_day(2 * DAY_MS - 1) == 1


def test_vwap_restarts_at_utc_midnight() -> None:
    vw = VWAP(source="close")
    five = 300_000
    # Day 0: two bars, the second closes exactly at midnight and still belongs to day 0.
    vw.update(DAY_MS - five, 0, 0, 0, 100, 1)
    vw.update(DAY_MS, 0, 0, 0, 200, 3)
    assert vw.value == (100 * 1 + 200 * 3) / 4
    # Day 1 starts: only its own bars count.
    vw.update(DAY_MS + five, 0, 0, 0, 400, 2)
    assert vw.value == 400.0
    vw.update(DAY_MS + 2 * five, 0, 0, 0, 100, 6)
    assert vw.value == (400 * 2 + 100 * 6) / 8


def test_vwap_with_no_volume_yet_is_the_bars_own_price() -> None:
    vw = VWAP()  # hlc3
    vw.update(DAY_MS + 60_000, 0, 12, 6, 9, 0)
    assert vw.ready and vw.value == 9.0
    vw.update(DAY_MS + 120_000, 0, 30, 30, 30, 5)
    assert vw.value == 30.0


@settings(max_examples=30, deadline=None)
@given(d=candle_series(min_size=50, max_size=250))
def test_vwap_of_a_session_ignores_every_earlier_session(d: Candles) -> None:
    days = (d["ts"] - 1) // DAY_MS
    starts = np.flatnonzero(np.diff(days)) + 1
    whole = run(VWAP(), d)[:, 0]
    for s in starts:
        alone = run(VWAP(), {k: v[s:] for k, v in d.items()})[:, 0]
        end = s + int((days[s:] == days[s]).sum())
        assert np.array_equal(whole[s:end], alone[: end - s])
