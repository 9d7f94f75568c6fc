"""The registry a card validator uses, and the crossover helpers."""

from __future__ import annotations

import inspect
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.indicators import (
    INDICATORS,
    SMA,
    IndicatorError,
    cross_from_compare,
    cross_state,
    get_spec,
    make_indicator,
    sma_compare,
    validate_params,
)
from engine.indicators.base import UNITS
from tests.test_indicators_reference import Candles, candle_series

# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("ema_", "ema"), ("EMA", "ema"), ("bolinger", "bollinger"), ("donchain", "donchian")],
)
def test_unknown_indicator_suggests_the_close_match(typo: str, meant: str) -> None:
    with pytest.raises(IndicatorError, match=f"did you mean '{meant}'") as err:
        make_indicator(typo, {})
    assert err.value.indicator == typo and err.value.suggestion == meant


def test_unknown_indicator_with_no_close_match_lists_the_known_ones() -> None:
    with pytest.raises(IndicatorError, match="known: sma, ema") as err:
        get_spec("zzzzzz")
    assert err.value.suggestion == ""


def test_unknown_parameter_is_named_with_a_suggestion() -> None:
    with pytest.raises(IndicatorError, match=r"'perod'.*did you mean 'period'") as err:
        make_indicator("rsi", {"perod": 14})
    assert err.value.param == "perod" and err.value.indicator == "rsi"


@pytest.mark.parametrize(
    ("name", "params", "param"),
    [
        ("sma", {"period": 0}, "period"),
        ("sma", {"period": -3}, "period"),
        ("sma", {"period": 2.5}, "period"),
        ("sma", {"period": True}, "period"),
        ("sma", {"period": "20"}, "period"),
        ("ema", {"source": "closes"}, "source"),
        ("ema", {"source": 3}, "source"),
        ("bollinger", {"mult": -1.0}, "mult"),
        ("bollinger", {"mult": math.nan}, "mult"),
        ("bollinger", {"mult": math.inf}, "mult"),
        ("swing", {"right": -1}, "right"),
        ("stdev", {"ddof": 2}, "ddof"),
        ("macd", {"fast": 26, "slow": 12}, "fast"),
        ("macd", {"fast": 12, "slow": 12}, "fast"),
        ("stdev", {"period": 1, "ddof": 1}, "period"),
    ],
)
def test_bad_parameter_values_raise_naming_the_parameter(
    name: str, params: dict[str, object], param: str
) -> None:
    with pytest.raises(IndicatorError, match=f"'{param}'") as err:
        make_indicator(name, params)
    assert err.value.param == param and err.value.indicator == name


def test_bad_source_suggests_the_close_match() -> None:
    with pytest.raises(IndicatorError) as err:
        make_indicator("sma", {"source": "hlc"})
    assert err.value.suggestion == "hlc3"


def test_direct_construction_validates_like_the_registry() -> None:
    with pytest.raises(IndicatorError, match="'period'"):
        SMA(period=0)


def test_an_int_is_accepted_for_a_float_parameter() -> None:
    boll = make_indicator("bollinger", {"mult": 3})
    assert boll.get("upper") != boll.get("upper")  # NaN: not warm yet
    assert validate_params("bollinger", {"mult": 3})["mult"] == 3


def test_validate_params_fills_defaults_in_declaration_order() -> None:
    assert validate_params("macd", {"signal": 5}) == {
        "fast": 12,
        "slow": 26,
        "signal": 5,
        "source": "close",
    }


@pytest.mark.parametrize("name", list(INDICATORS))
def test_spec_agrees_with_the_class(name: str) -> None:
    spec = INDICATORS[name]
    sig = inspect.signature(spec.cls.__init__)
    declared = {k: p.default for k, p in sig.parameters.items() if k != "self"}
    assert declared == spec.defaults()
    ind = make_indicator(name, {})
    assert type(ind) is spec.cls and ind.outputs == spec.outputs and spec.doc
    assert len(spec.units) == len(spec.outputs) and set(spec.units) <= set(UNITS)
    for output in spec.outputs:  # every declared output can be read
        assert isinstance(ind.get(output), float)
    with pytest.raises(IndicatorError, match="no output 'nope'"):
        ind.get("nope")


def test_value_is_the_first_output_once_warm() -> None:
    wave = [(i * 7) % 11 for i in range(80)]  # goes up and down, so swings exist
    candles = [
        (60_000 * (i + 1), 100 + w, 106 + w, 94 + w, 101 + w, 10) for i, w in enumerate(wave)
    ]
    for name in INDICATORS:
        ind = make_indicator(name, {})
        for row in candles:
            ind.update(*row)
        assert ind.ready, name
        assert ind.value == ind.get(ind.outputs[0]) == ind.get("value"), name


# --------------------------------------------------------------------------- crosses


def _sma_pair(d: Candles, pa: int, pb: int, src_b: str) -> list[tuple[SMA, SMA]]:
    a, b = SMA(period=pa), SMA(period=pb, source=src_b)
    states = []
    rows = zip(*(d[k].tolist() for k in ("ts", "o", "h", "l", "c", "v")))
    for row in rows:
        a.update(*row)
        b.update(*row)
        if a.ready and b.ready:
            states.append((a, b))
            assert sma_compare(a, b) == _exact_sign(a, b)
            assert sma_compare(b, a) == -_exact_sign(a, b)
    return states


def _exact_sign(a: SMA, b: SMA) -> int:
    diff = Fraction(a.total, a.divisor) - Fraction(b.total, b.divisor)
    return (diff > 0) - (diff < 0)


@settings(max_examples=60, deadline=None)
@given(
    d=candle_series(min_size=10, max_size=150),
    pa=st.integers(1, 8),
    pb=st.integers(1, 8),
    src_b=st.sampled_from(["close", "hl2", "hlc3", "ohlc4"]),
)
def test_sma_compare_is_the_exact_rational_comparison(
    d: Candles, pa: int, pb: int, src_b: str
) -> None:
    _sma_pair(d, pa, pb, src_b)


def test_sma_compare_sees_a_real_tie_as_a_tie() -> None:
    a, b = SMA(period=3), SMA(period=6)
    for i, c in enumerate([7, 7, 7, 1, 2, 3, 4, 5, 6]):
        a.update(60_000 * (i + 1), c, c, c, c, 0)
        b.update(60_000 * (i + 1), c, c, c, c, 0)
    # a: (4+5+6)/3 = 5, b: (1+2+3+4+5+6)/6 = 3.5; then make them meet.
    assert sma_compare(a, b) == 1
    for i, c in enumerate([2, 2, 2]):
        a.update(10**7 + i, c, c, c, c, 0)
        b.update(10**7 + i, c, c, c, c, 0)
    # a = 2, b = (4+5+6+2+2+2)/6 = 3.5
    assert sma_compare(a, b) == -1
    c3 = SMA(period=2)
    for i, c in enumerate([3, 4]):
        c3.update(i + 1, c, c, c, c, 0)
    tie = SMA(period=4)
    for i, c in enumerate([1, 6, 3, 4]):
        tie.update(i + 1, c, c, c, c, 0)
    assert sma_compare(c3, tie) == 0  # 7/2 == 14/4


@pytest.mark.parametrize(
    ("prev_a", "prev_b", "a", "b", "want"),
    [
        (1.0, 2.0, 3.0, 2.0, 1),  # from below to above
        (2.0, 2.0, 3.0, 2.0, 1),  # from touching to above
        (3.0, 2.0, 1.0, 2.0, -1),
        (2.0, 2.0, 1.0, 2.0, -1),
        (3.0, 2.0, 4.0, 2.0, 0),  # stays above
        (1.0, 2.0, 2.0, 2.0, 0),  # touching is not crossing
        (math.nan, 2.0, 3.0, 2.0, 0),  # not warm yet
        (1.0, 2.0, math.nan, 2.0, 0),
    ],
)
def test_cross_state(prev_a: float, prev_b: float, a: float, b: float, want: int) -> None:
    assert cross_state(prev_a, prev_b, a, b) == want


@settings(max_examples=200, deadline=None)
@given(pa=st.integers(-3, 3), pb=st.integers(-3, 3), a=st.integers(-3, 3), b=st.integers(-3, 3))
def test_cross_from_compare_agrees_with_cross_state(pa: int, pb: int, a: int, b: int) -> None:
    prev_cmp = (pa > pb) - (pa < pb)
    cmp = (a > b) - (a < b)
    assert cross_from_compare(prev_cmp, cmp) == cross_state(pa, pb, a, b)
