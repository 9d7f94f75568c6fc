"""The card language: units of numbers in expressions, condition semantics, intent and
section mapping, warm-up, the Python escape hatch. Expected values come from the
documented rules (a card number next to a price is quote currency; tick 0.1 USDT)."""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sim.config import SimConfig
from engine.card import CardCompileError, CardSpec
from engine.config import EngineConfig
from engine.events import CandleClosed, Intent
from engine.expressions import PRICE, QTY, SCALAR, Scope, compile_bool, compile_value
from engine.indicators.averages import SMA
from engine.indicators.cross import sma_compare
from engine.strategy import MarketContext
from replay.cards import load_card, load_card_text
from tests.test_ideacard_helpers import CARDS, INSTRUMENT, candle, drive


def scope() -> Scope:
    names = {
        "close": (lambda: 800_000, PRICE),  # 80,000.0 USDT
        "atr": (lambda: 100.0, PRICE),  # 10 USDT
        "rsi": (lambda: 25.0, SCALAR),
        "volume": (lambda: 2_000, QTY),  # 2 BTC
    }
    return Scope(names, Decimal("0.1"), Decimal("0.001"))


@pytest.mark.parametrize(
    ("text", "ticks"),
    [
        ("close - 50", 800_000 - 500),  # 50 USDT below the close
        ("close - 0.5 * atr", 800_000 - 50),  # a factor is a plain number
        ("50", 500),  # a price standing alone is quote currency
        ("2 * 150", 3_000),  # constants fold first, then convert
        ("ticks(5) + close", 800_005),
        ("min(close, atr)", 100),
        ("max(close - 10, 3)", 800_000 - 100),
        ("abs(atr - close)", 799_900),
        ("-atr + close", 799_900),
        ("(close + atr) / 2", 400_050),
        ("atr / atr", 1),
    ],
)
def test_price_expressions_in_ticks(text: str, ticks: float) -> None:
    fn, _ = compile_value(text, scope(), "p", PRICE)
    assert fn() == pytest.approx(ticks, abs=1e-9)


def test_numbers_take_the_unit_of_their_neighbour() -> None:
    s = scope()
    assert compile_bool("close > 79999.9", s, "p")()  # 799,999 ticks
    assert not compile_bool("close > 80000.1", s, "p")()
    assert compile_bool("volume > 1.5 and volume < 2.5", s, "p")()  # BTC -> lots
    assert compile_bool("rsi < 30 and not rsi > 30", s, "p")()  # rsi is a plain number
    assert compile_value("rsi + 5", s, "p", SCALAR)[0]() == 30
    assert compile_value(1.5, s, "p", QTY)[0]() == 1_500


def test_division_by_zero_is_nan_and_compares_false() -> None:
    s = scope()
    assert math.isnan(compile_value("close / (atr - atr)", s, "p")[0]())
    assert not compile_bool("close / (atr - atr) > 0", s, "p")()
    assert not compile_bool("close / (atr - atr) <= 0", s, "p")()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("close ** 2", "close ** 2"),
        ("__import__('os')", "__import__"),
        ("close.foo", "close.foo"),
        ("close if rsi else atr", "close if rsi else atr"),
        ("[close]", "[close]"),
    ],
)
def test_anything_outside_the_grammar_is_a_card_error(text: str, found: str) -> None:
    with pytest.raises(CardCompileError) as info:
        compile_value(text, scope(), "blocks[0].then.enter_long.stop_loss")
    assert info.value.path == "blocks[0].then.enter_long.stop_loss"
    assert info.value.found == found


# ------------------------------------------------------------ condition semantics


def closes_to_candles(closes: list[int], vols: list[int] | None = None) -> list[CandleClosed]:
    start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    vols = vols or [1_000] * len(closes)
    return [
        candle(start + i * 60_000, 60_000, c, c + 1, c - 1, c, v, "1m")
        for i, (c, v) in enumerate(zip(closes, vols))
    ]


def fired(card_text: str, closes: list[int], vols: list[int] | None = None) -> list[int]:
    card = load_card_text(card_text)
    strategy = card.new_strategy(INSTRUMENT)
    ctx = MarketContext()  # stays flat: only the conditions decide
    return [i for i, c in enumerate(closes_to_candles(closes, vols)) if strategy.on_candle(c, ctx)]


def card_with(when: str) -> str:
    return f"symbol: BTCUSDT\nblocks:\n  - when: {when}\n    then: {{enter_long: {{qty: 0.001}}}}\n"


def test_cross_above_needs_a_strict_side_change() -> None:
    # 100 USDT = 1000 ticks; signs -,0,+,0,+,-,+ : a touch-and-bounce is not a cross
    closes = [990, 1000, 1010, 1000, 1010, 990, 1010]
    assert fired(card_with("{cross_above: [close, 100]}"), closes) == [2, 6]
    assert fired(card_with("{cross_below: [close, 100]}"), closes) == [5]


def test_held_counts_consecutive_bars() -> None:
    closes = [1010, 1010, 990, 1010, 1010, 1010, 1010]
    card = card_with('{held: {for: 3, cond: "close > 100"}}')
    assert fired(card, closes) == [5, 6]


def test_within_confirms_inside_the_window_only() -> None:
    closes = [1000, 1060, 1000, 1000, 1000, 1000]
    vols = [0, 0, 0, 1_000, 1_000, 1_000]  # volume > 0.5 BTC from bar 3
    card = card_with('{within: {bars: 2, first: "close > 105", then: "volume > 0.5"}}')
    assert fired(card, closes, vols) == [3]  # bar 1 + 2 = bar 3; bar 4 is too late


def test_first_matching_block_wins_and_the_others_still_count() -> None:
    text = """\
symbol: BTCUSDT
blocks:
  - name: a
    when: "close > 100"
    then: {enter_long: {qty: 0.001}}
  - name: b
    when: {held: {for: 2, cond: "close > 100"}}
    then: {enter_short: {qty: 0.001}}
  - name: c
    when: {held: {for: 2, cond: "close < 100"}}
    then: {enter_short: {qty: 0.002}}
"""
    strategy = load_card_text(text).new_strategy(INSTRUMENT)
    ctx = MarketContext()
    got = [
        [(it.block, it.qty) for it in strategy.on_candle(c, ctx)]
        for c in closes_to_candles([990, 990, 1010, 1010])
    ]
    # block c's `held` counted bars 0 and 1 although nothing else matched on them
    assert got == [[], [("c", 2)], [("a", 1)], [("a", 1)]]


def test_nothing_trades_until_every_feature_is_warm() -> None:
    text = card_with('"close > 0"').replace(
        "blocks:", "features:\n  m: {indicator: sma, period: 5}\nblocks:"
    )
    assert fired(text, [1000] * 8) == [4, 5, 6, 7]


def test_an_intent_with_an_unknown_value_is_dropped() -> None:
    text = (
        'symbol: BTCUSDT\nblocks:\n  - when: "close > 0"\n'
        '    then: {enter_long: {qty: 0.001, stop_loss: "close / (close - close)"}}\n'
    )
    assert fired(text, [1000, 1000]) == []


# ------------------------------------------------------------------ intent mapping


def test_intents_map_onto_engine_intent_fields() -> None:
    text = """\
symbol: BTCUSDT
features:
  atr: {indicator: atr, period: 1}
blocks:
  - name: all_of_them
    when: "close > 0"
    then:
      - enter_long: {equity_pct: 5, style: limit, take_profit: close + 100}
      - enter_short: {risk_pct: 1, stop_distance: 2 * atr, stop_loss: close + 20}
      - place_limit: {side: short, price: close + 0.5 * atr, timeout_bars: 4, qty: 0.01}
      - add: {qty: 0.0015, style: iceberg, slices: 3, slice_every: 30s}
      - reduce: {pct: 50}
      - set_stop: {price: close - 30}
      - set_take_profit: {price: 81000}
      - trail_stop: {distance: 3 * atr}
      - exit
      - cancel_all
execution:
  limit_offset: 5
  limit_timeout_bars: 2
"""
    strategy = load_card_text(text).new_strategy(INSTRUMENT)
    c = closes_to_candles([800_000])[0]  # range 2 ticks -> ATR(1) = 2 ticks
    got = strategy.on_candle(c, MarketContext())
    e = Intent  # the expected values are read straight from the card above
    assert got == [
        e("enter_long", "all_of_them", equity_pct=5.0, take_profit=801_000.0, style="limit",
          offset=50.0, timeout_bars=2),
        e("enter_short", "all_of_them", risk_pct=1.0, stop_distance=4.0, stop_loss=800_200.0),
        e("place_limit", "all_of_them", qty=10, price=800_001.0, style="limit", timeout_bars=4,
          offset=50.0, side="Sell"),
        e("add", "all_of_them", qty=1, style="iceberg", slices=3, slice_every_ms=30_000),
        e("reduce", "all_of_them", reduce_pct=50.0),
        e("set_stop", "all_of_them", price=799_700.0),
        e("set_take_profit", "all_of_them", price=810_000.0),
        e("trail_stop", "all_of_them", trail_distance=6.0),
        e("exit", "all_of_them"),
        e("cancel_all", "all_of_them"),
    ]  # fmt: skip


def test_sections_compile_to_engine_and_sim_config() -> None:
    text = """\
symbol: BTCUSDT
blocks: [{when: flat, then: exit}]
risk: {max_position_notional: 1000.5, allow_flip: true, default_equity_pct: 7}
execution: {style: twap, slices: 4, slice_every: 2m, checkpoint_every: 500}
sim: {taker_fee: 0.055%, maker_fee: -0.00025, funding_rate: 0.01%, funding_interval: 4h,
      slippage_ticks: 0, both_hit: better}
"""
    card = load_card_text(text)
    r, x = card.engine_config.risk, card.engine_config.execution
    assert (r.max_position_notional, r.allow_flip) == (100_050_000_000, True)
    assert (x.style, x.slices, x.slice_every_ms) == ("twap", 4, 120_000)
    assert (card.engine_config.checkpoint_every, card.engine_config.default_equity_pct) == (
        500,
        7.0,
    )
    s = card.sim_config
    assert (s.taker_fee_e8, s.maker_fee_e8, s.funding_rate_e8) == (55_000, -25_000, 10_000)
    assert (s.funding_interval_ms, s.slippage_ticks, s.both_hit) == (14_400_000, 0, "better")


def test_a_card_without_optional_sections_gets_the_defaults() -> None:
    card = load_card_text("symbol: BTCUSDT\nblocks: [{when: long, then: exit}]\n", "x.yaml")
    assert card.engine_config == EngineConfig()
    assert card.sim_config == SimConfig()
    assert card.timeframe == "1m" and card.source == "x.yaml"
    assert card.hash == hashlib.sha256(card.text.encode()).hexdigest()


def test_load_card_and_load_card_text_agree() -> None:
    path = CARDS / "mtf_trend.yaml"
    a = load_card(path)
    b = load_card_text(path.read_text(), str(path))
    assert (a.hash, a.spec, a.engine_config, a.sim_config) == (
        b.hash,
        b.spec,
        b.engine_config,
        b.sim_config,
    )


# ------------------------------------------------------------------ python hatch


def test_python_strategy_sees_features_and_keeps_its_state() -> None:
    card = load_card(CARDS / "detector_driven.yaml")
    strategy = card.new_strategy(INSTRUMENT)
    # swing(3, 3): a pivot high of 1100 at bar 3, a pivot low at bar 8, then a breakout
    closes = [1000, 1030, 1060, 1100, 1060, 1030, 1000, 980, 950, 980, 1000, 1020, 1050, 1120]
    got = drive(strategy, closes_to_candles(closes))
    entries = [(i, it.action) for i, it in got]
    assert entries == [(13, "enter_long")]
    assert strategy.snapshot()[-1] == [1101.0]  # the swing high it traded (ticks)


@settings(max_examples=60, deadline=None)
@given(
    closes=st.lists(st.integers(990, 1010), min_size=10, max_size=120),
    periods=st.tuples(st.integers(1, 5), st.integers(1, 8)),
)
def test_sma_crosses_are_exact_and_agree_with_sma_compare(
    closes: list[int], periods: tuple[int, int]
) -> None:
    """Crosses of two SMAs follow engine.indicators.cross.sma_compare (integer sums):
    a cross fires where the sign turns and the last non-zero sign was the opposite."""
    p, q = periods
    text = (
        f"symbol: BTCUSDT\nfeatures:\n  a: {{indicator: sma, period: {p}}}\n"
        f"  b: {{indicator: sma, period: {q}}}\nblocks:\n"
        "  - {name: up, when: {cross_above: [a, b]}, then: {enter_long: {qty: 0.001}}}\n"
        "  - {name: down, when: {cross_below: [a, b]}, then: {enter_short: {qty: 0.001}}}\n"
    )
    strategy = load_card_text(text).new_strategy(INSTRUMENT)
    ref_a, ref_b = SMA(p), SMA(q)
    last = 0
    for c in closes_to_candles(closes):
        got = [it.block for it in strategy.on_candle(c, MarketContext())]
        for ind in (ref_a, ref_b):
            ind.update(c.ts, c.open, c.high, c.low, c.close, c.volume)
        want: list[str] = []
        if ref_a.ready and ref_b.ready:
            s = sma_compare(ref_a, ref_b)
            if s and last == -s:
                want = ["up" if s > 0 else "down"]
            last = s or last
        assert got == want


def test_card_spec_is_plain_msgspec_data() -> None:
    for path in sorted(CARDS.glob("*.yaml")):
        spec = load_card(path).spec
        assert msgspec.msgpack.decode(msgspec.msgpack.encode(spec), type=CardSpec) == spec


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(st.booleans(), min_size=1, max_size=60),
    b=st.lists(st.booleans(), min_size=60, max_size=60),
    n=st.integers(0, 6),
)
def test_held_and_within_match_a_brute_force_reading(a: list[bool], b: list[bool], n: int) -> None:
    """held(N) is "A on each of the last N bars"; within(N) is "B now and A on one of the
    last N+1 bars" -- checked against the definitions applied to the whole history."""
    b = b[: len(a)]
    closes = [1010 if x else 990 for x in a]  # A: close > 100 USDT
    vols = [2_000 if y else 0 for y in b]  # B: volume > 1 BTC
    held = card_with(f'{{held: {{for: {max(n, 1)}, cond: "close > 100"}}}}')
    within = card_with(f'{{within: {{bars: {n}, first: "close > 100", then: "volume > 1"}}}}')
    k = max(n, 1)
    assert fired(held, closes, vols) == [
        i for i in range(len(a)) if i >= k - 1 and all(a[i - k + 1 : i + 1])
    ]
    assert fired(within, closes, vols) == [
        i for i in range(len(a)) if b[i] and any(a[max(0, i - n) : i + 1])
    ]


def test_a_python_strategy_must_return_intents(tmp_path: Path) -> None:
    (tmp_path / "sloppy.py").write_text(
        "class Sloppy:\n"
        "    def on_bar(self, bar, ctx): return ['buy']\n"
        "    def snapshot(self): return None\n"
        "    def restore(self, state): pass\n"
    )
    card = tmp_path / "card.yaml"
    card.write_text("symbol: BTCUSDT\nstrategy: {class: sloppy.Sloppy}\n")
    strategy = load_card(card).new_strategy(INSTRUMENT)
    with pytest.raises(TypeError, match=r"Sloppy.on_bar returned 'buy'"):
        strategy.on_candle(closes_to_candles([1000])[0], MarketContext())
