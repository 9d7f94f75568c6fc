"""Lagged values in card expressions (``close[1]``, ``dc.upper[1]``): the value is the one
of n bars before, the lookback is part of the warm-up, bad lags are card errors naming
the line, no lookahead, and the ring buffers survive snapshot/restore."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import CandleClosed, Intent, IntentEmitted, encode
from engine.plan import CompiledPlan
from engine.strategy import MarketContext
from replay.cards import IdeaCardError, load_card, load_card_text
from tests.test_ideacard_helpers import INSTRUMENT, drive, synthetic
from tests.test_ideacard_language import card_with, closes_to_candles, fired


def test_close_1_is_the_previous_close() -> None:
    # 100.5 USDT = 1005 ticks; only bar 2 has a previous close of 1005
    assert fired(card_with('"close[1] == 100.5"'), [1000, 1005, 1010, 1005]) == [2]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(998, 1002), min_size=1, max_size=40))
def test_close_1_equals_close_exactly_where_the_series_repeats(closes: list[int]) -> None:
    want = [i for i in range(1, len(closes)) if closes[i] == closes[i - 1]]
    assert fired(card_with('"close == close[1]"'), closes) == want


def test_the_lookback_is_part_of_the_warm_up() -> None:
    assert fired(card_with('"close[0] > 0"'), [1000] * 5) == [0, 1, 2, 3, 4]
    assert fired(card_with('"close[3] > 0"'), [1000] * 5) == [3, 4]
    # a feature warm on bar 4 (sma 5), lagged 2 more bars: first trade on bar 6
    text = card_with('"m[2] > 0"').replace(
        "blocks:", "features:\n  m: {indicator: sma, period: 5}\nblocks:"
    )
    assert fired(text, [1000] * 9) == [6, 7, 8]


DC = card_with('"close > dc.upper[1]"').replace(
    "blocks:", "features:\n  dc: {indicator: donchian, period: 3}\nblocks:"
)


def test_a_breakout_above_the_previous_channel_fires_where_expected() -> None:
    # highs are close + 1: the channel of bars 1..3 tops at 1001; bar 4 closes 1020 above
    # it; bar 5 (1020) is not above bar 4's channel (1021); bar 6 (1030) is
    closes = [1000, 1000, 1000, 1000, 1020, 1020, 1030]
    assert fired(DC, closes) == [4, 6]
    # the unlagged channel includes the current bar: a close never breaks it
    assert fired(DC.replace("dc.upper[1]", "dc.upper"), closes) == []


def test_lags_work_in_crosses_and_intent_prices() -> None:
    text = (
        "symbol: BTCUSDT\nblocks:\n  - when: {cross_above: [close, 'close[1] + ticks(1)']}\n"
        "    then: {enter_long: {qty: 0.001, stop_loss: 'low[2]'}}\n"
    )
    strategy = load_card_text(text).new_strategy(INSTRUMENT)
    candles = closes_to_candles([1000, 1000, 990, 995, 1000])
    out = [strategy.on_candle(c, MarketContext()) for c in candles]
    # warm on bar 2 (low[2]); bar 2: 990 < 1001 (below); bar 3: 995 > 991 crosses, and
    # its stop is bar 1's low, 999 ticks; bar 4: 1000 > 996 stays above
    assert [len(o) for o in out] == [0, 0, 0, 1, 0]
    assert out[3][0].stop_loss == 999.0


def _fail(tmp_path: Path, when: str) -> IdeaCardError:
    path = tmp_path / "card.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: t
        symbol: BTCUSDT
        features:
          dc: {{indicator: donchian, period: 3}}
        blocks:
          - name: b
            when: {when}
            then: {{enter_long: {{qty: 0.001}}}}
        """)
    )
    with pytest.raises(IdeaCardError) as info:
        load_card(path)
    err = info.value
    assert err.line == 7 and err.path == "blocks[0].when"
    assert f"line {err.line}" in str(err) and str(path) in str(err)
    return err


@pytest.mark.parametrize("lag", ["501", "-1", "1.5", "n", "'1'"])
def test_a_bad_lag_is_a_card_error_with_the_line(tmp_path: Path, lag: str) -> None:
    err = _fail(tmp_path, f'"close > dc.upper[{lag}]"')
    assert "bad lag" in str(err)
    assert "0 to 500" in err.expected
    assert err.found == f"dc.upper[{lag}]"


def test_lag_500_is_accepted_and_a_bool_cannot_be_lagged(tmp_path: Path) -> None:
    card = load_card_text(card_with('"close > close[500]"'))
    assert card.spec.blocks
    err = _fail(tmp_path, '"flat[1] and close > 0"')
    assert "cannot be lagged" in str(err)
    err = _fail(tmp_path, '"clse[1] > 0"')
    assert err.suggestion == "close"


N = 400


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, N - 2), tail=st.integers(0, 2**32 - 1))
def test_no_lookahead_with_lags(seed: int, cut: int, tail: int) -> None:
    card = load_card_text(
        DC.replace("period: 3", "period: 20").replace(
            '"close > dc.upper[1]"', '"flat and close > dc.upper[1] and close[1] < high[2]"'
        )
        + '  - when: "long and close < dc.lower[3]"\n    then: exit\n'
    )
    base = synthetic(seed, N)
    other = base[: cut + 1] + synthetic(
        tail, N - cut - 1, start_ms=base[cut].close_ms, price=base[cut].close
    )
    a = drive(card.new_strategy(INSTRUMENT), base)
    b = drive(card.new_strategy(INSTRUMENT), other)

    def upto(pairs: list[tuple[int, Intent]], cs: list[CandleClosed]) -> list[bytes]:
        return [encode(IntentEmitted(cs[i].ts, it)) for i, it in pairs if i <= cut]

    assert upto(a, base) == upto(b, other)


def test_no_lookahead_with_lags_is_not_vacuous() -> None:
    card = load_card_text(DC.replace("period: 3", "period: 20"))
    assert drive(card.new_strategy(INSTRUMENT), synthetic(1, N))


def test_lag_buffers_survive_snapshot_and_restore() -> None:
    card = load_card_text(
        DC.replace("period: 3", "period: 20").replace(
            '"close > dc.upper[1]"', '"close > dc.upper[1] and close[7] < close"'
        )
    )
    cs = synthetic(3, 600)
    k = 250
    whole = card.new_strategy(INSTRUMENT)
    ctx = MarketContext()
    want = drive(whole, cs, ctx)
    first = card.new_strategy(INSTRUMENT)
    ctx2 = MarketContext()
    head = drive(first, cs[:k], ctx2)
    data = msgspec.msgpack.encode(first.snapshot())
    second = card.new_strategy(INSTRUMENT)
    assert isinstance(second, CompiledPlan)
    second.restore(msgspec.msgpack.decode(data))
    tail = drive(second, cs[k:], ctx2, first_index=k)
    assert want and head + tail == want
    assert any(i >= k for i, _ in want)
