"""Trade counters through the engine and the simulated venue: ``adds_in_trade`` (fills that
grew the current position), ``bars_since_exit`` and ``trades_today`` (UTC day)."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import new_state, restore_state, snapshot_state
from engine.events import CandleClosed, SessionStarted
from engine.hashing import state_hash
from engine.instrument import BTCUSDT
from replay.cards import load_card_text
from tests.test_ideacard_helpers import INSTRUMENT, backtest, candle, synthetic

CARD = """\
symbol: BTCUSDT
timeframes: {execution: 1h}
blocks:
  - name: out
    when: "long and bars_in_trade >= 3"
    then: exit
  - name: more
    when: "long and adds_in_trade < 2"
    then: {add: {qty: 0.001}}
  - name: in
    when: "flat and bars_since_exit >= 2 and trades_today < 2"
    then: {enter_long: {qty: 0.001}}
"""

DAY0 = 1_700_006_400_000  # a UTC midnight


def hourly(n: int) -> list[CandleClosed]:
    return [
        candle(DAY0 + i * 3_600_000, 3_600_000, 800_000, 800_010, 799_990, 800_000, 1_000, "1h")
        for i in range(n)
    ]


def blocks_per_candle(n: int) -> list[str]:
    logs = backtest(load_card_text(CARD), hourly(n))
    out = []
    for log in logs:
        names = [
            ev[2][1] for ev in (msgspec.msgpack.decode(b) for b in log) if ev[0] == "IntentEmitted"
        ]
        out.append(",".join(names))
    return out


def test_counters_drive_adds_reentry_spacing_and_the_daily_cap() -> None:
    got = blocks_per_candle(48)
    trade = ["in", "more", "more", "out"]  # two adds, then the exit after 3 bars in trade
    # bar 0: one bar since the session began (< 2); after an exit fills, one empty bar
    day = ["", *trade, "", *trade]
    # the candle closing at midnight (index 23, stamped with its close) starts day 2,
    # which allows two trades again
    assert got[:23] == day + [""] * (23 - len(day))
    assert got[23:33] == [*trade, "", *trade, ""]
    assert got[33:47] == [""] * 14 and got[47] == "in"


def test_counters_survive_a_snapshot() -> None:
    card = load_card_text(CARD)
    started = SessionStarted(
        DAY0, "s", "backtest", card.text, card.hash, "sim", BTCUSDT, "t", 10**13, "", "1h"
    )
    s = new_state(started, card.new_strategy(INSTRUMENT), card.engine_config)
    s.adds_in_trade, s.last_exit_bar, s.trades_today = 2, 7, 3
    back = restore_state(snapshot_state(s), card.new_strategy(INSTRUMENT))
    assert (back.adds_in_trade, back.last_exit_bar, back.trades_today) == (2, 7, 3)
    assert state_hash(back) == state_hash(s)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 70), tail=st.integers(0, 2**32 - 1))
def test_no_lookahead_with_counters(seed: int, cut: int, tail: int) -> None:
    card = load_card_text(CARD)
    base = synthetic(seed, 72, start_ms=DAY0, tf_ms=3_600_000, tf="1h")
    other = base[: cut + 1] + synthetic(
        tail,
        72 - cut - 1,
        start_ms=base[cut].close_ms,
        tf_ms=3_600_000,
        tf="1h",
        price=base[cut].close,
    )
    assert backtest(card, base)[: cut + 1] == backtest(card, other)[: cut + 1]
