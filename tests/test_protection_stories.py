"""Stories of issue 11: a position is never naked, and a stop-and-reverse goes through.

Each story runs the engine through the backtest loop against the simulated venue with
hand-built candles (prices in 0.1 USDT ticks), so what is asserted is what a backtest
would have logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest

from adapters.sim.config import SimConfig
from engine.config import EngineConfig, RiskLimits
from engine.core import step
from engine.events import (
    BUY,
    SELL,
    AmendOrder,
    CandleClosed,
    CommandRejected,
    Event,
    Fill,
    Intent,
    OrderAccepted,
    OrderRejected,
    OrderTriggered,
    ProtectionFailed,
    RiskRejected,
    SubmitOrder,
)
from engine.instrument import fee_for
from engine.orders import attached_id
from projections.refusals import RefusalCount
from tests.test_engine_support import INITIAL, MINUTE, T0, UNIT, Scripted
from tests.test_engine_with_sim import assert_books_agree, backtest, walk

E = TypeVar("E")
SLIP = 1  # SimConfig().slippage_ticks
TAKER = SimConfig().taker_fee_e8
REPO = Path(__file__).resolve().parents[1]
REAL_15M = (
    REPO.parent / "shared" / "data" / "crypto" / "bybit_linear_BTCUSDT_15m_20250403_20250702.csv"
)


def bar(i: int, o: int, h: int, lo: int, c: int) -> CandleClosed:
    return CandleClosed(
        T0 + (i + 1) * MINUTE, "BTCUSDT", "1m", T0 + i * MINUTE, T0 + (i + 1) * MINUTE,
        o, h, lo, c, 1_000,
    )  # fmt: skip


def flat(i: int, price: int) -> CandleClosed:
    return bar(i, price, price + 10, price - 10, price)


def kinds(log: list[Event], kind: type[E]) -> list[E]:
    return [e for e in log if type(e) is kind]


def test_entry_bar_goes_through_the_stop_and_the_stop_triggers_in_that_bar() -> None:
    # Bar 0 closes at 50,000.0: enter long 0.010 BTC, stop 49,500.0, target 51,000.0.
    # Bar 1 opens at 50,010.0 (the entry fills there), dips to 49,400.0, closes 49,900.0.
    # The stop is armed the moment the entry fills, so the dip triggers it in bar 1.
    entry = Intent("enter_long", qty=10, stop_loss=495_000, take_profit=510_000)
    candles = [flat(0, 500_000), bar(1, 500_100, 500_500, 494_000, 499_000), flat(2, 499_000)]
    state, venue, log = backtest(candles, Scripted({0: [entry]}), EngineConfig(), SimConfig())
    assert_books_agree(state, venue, log)
    (cmd,) = [e for e in kinds(log, SubmitOrder) if e.purpose == "entry"]
    assert (cmd.stop_loss, cmd.take_profit) == (495_000, 510_000)
    sl = attached_id(cmd.client_id, "stop")
    fills = kinds(log, Fill)
    # Times on the bar's path (adapters/sim/README.md "Times"): the entry at the open; the
    # path goes to the nearer extreme first, 500,500 (400 ticks), then 494,000 (6,500), then
    # 499,000 (5,000): 11,900 ticks in all, and the stop at 495,000 is 400 + 5,500 = 5,900
    # along, so 60,000 ms * 5,900 // 11,900 = 29,747 ms into the bar.
    assert [(f.client_id, f.side, f.price, f.ts) for f in fills] == [
        (cmd.client_id, BUY, 500_100 + SLIP, candles[1].open_ms),
        (sl, SELL, 495_000 - SLIP, candles[1].open_ms + 29_747),
    ]
    assert any(type(e) is OrderTriggered and e.client_id == sl for e in log)
    assert state.position.qty == 0 and venue.position.qty == 0
    # The loss is the stop's, not the bar's close: (49,499.9 - 50,010.1) * 0.01 BTC - fees.
    realized = (495_000 - SLIP - (500_100 + SLIP)) * 10 * UNIT
    fees = fee_for((500_100 + SLIP) * 10 * UNIT, TAKER) + fee_for(
        (495_000 - SLIP) * 10 * UNIT, TAKER
    )
    assert state.balance == INITIAL + realized - fees
    assert kinds(log, ProtectionFailed) == []
    assert venue.orders == {}  # the target went with the position (reduce-only, flat)


def test_entry_bar_reaching_stop_and_target_follows_the_both_hit_rule() -> None:
    # Bar 1 opens at 50,000.0, reaches 50,450.0 (nearer) and 49,400.0. Stop 49,500, target
    # 50,400: both exits of the new position are reached in its entry bar. "worse" (the
    # default) walks the adverse side first; "better" the favourable one.
    entry = Intent("enter_long", qty=10, stop_loss=495_000, take_profit=504_000)
    candles = [flat(0, 500_000), bar(1, 500_000, 504_500, 494_000, 500_000)]
    for rule, purpose, price in (
        ("worse", "stop", 495_000 - SLIP),
        ("better", "take_profit", 504_000 - SLIP),
    ):
        sim = SimConfig(both_hit=rule)
        state, venue, log = backtest(candles, Scripted({0: [entry]}), EngineConfig(), sim)
        assert_books_agree(state, venue, log)
        entry_id = next(e.client_id for e in kinds(log, SubmitOrder))
        closing = [f for f in kinds(log, Fill) if f.side == SELL]
        assert [(f.client_id, f.price) for f in closing] == [
            (attached_id(entry_id, purpose), price)
        ]
        assert state.position.qty == 0


def test_entry_filling_beyond_its_stop_logs_protection_failed_and_closes_in_that_bar() -> None:
    # Bar 0 closes at 50,000.0: enter long with a stop at 49,900.0. Bar 1 gaps down: it opens
    # at 49,800.0 (the entry fills there, already beyond its stop) and closes at 49,750.0,
    # beyond the stop too. The stop cannot protect that position: ProtectionFailed, and the
    # position is closed at once -- at the next price the path reaches, in that bar.
    entry = Intent("enter_long", qty=10, stop_loss=499_000)
    candles = [flat(0, 500_000), bar(1, 498_000, 498_500, 497_000, 497_500), flat(2, 497_500)]
    state, venue, log = backtest(candles, Scripted({0: [entry]}), EngineConfig(), SimConfig())
    assert_books_agree(state, venue, log)
    entry_id = next(e.client_id for e in kinds(log, SubmitOrder))
    sl = attached_id(entry_id, "stop")
    (failed,) = kinds(log, ProtectionFailed)
    assert (failed.client_id, failed.purpose) == (sl, "stop")
    assert failed.reason == "stop_loss 499000 already passed at the fill 498001"
    assert failed.ts == candles[1].open_ms  # found at the fill, at the open
    fills = kinds(log, Fill)
    assert [(f.client_id, f.price, f.ts) for f in fills] == [
        (entry_id, 498_000 + SLIP, candles[1].open_ms),
        (sl, 498_000 - SLIP, candles[1].open_ms),  # closed at the bar's open, not its close
    ]
    assert state.position.qty == 0
    counts = RefusalCount().fold(log).summary()
    assert counts.failed_protections == {"stop_loss N already passed at the fill N": 1}


def test_a_set_stop_already_through_the_price_closes_at_the_next_open() -> None:
    # In position; the card asks for a stop above the close of a long: it cannot exist.
    # The engine closes at market at once; the venue fills that at the next open.
    script = {0: [Intent("enter_long", qty=10)], 2: [Intent("set_stop", price=501_000)]}
    candles = [flat(i, 500_000) for i in range(3)] + [flat(3, 500_200), flat(4, 500_200)]
    state, venue, log = backtest(candles, Scripted(script), EngineConfig(), SimConfig())
    assert_books_agree(state, venue, log)
    (failed,) = kinds(log, ProtectionFailed)
    assert failed.purpose == "stop" and "wrong side" in failed.reason
    assert kinds(log, RiskRejected) == []
    close = next(e for e in kinds(log, SubmitOrder) if e.client_id == failed.close_id)
    assert (close.side, close.qty, close.reduce_only) == (SELL, 10, True)
    (fill,) = [f for f in kinds(log, Fill) if f.client_id == failed.close_id]
    assert (fill.price, fill.ts) == (500_200 - SLIP, candles[3].open_ms)  # the next open
    assert state.position.qty == 0


def test_a_refused_stop_amend_closes_the_position() -> None:
    # The trailing stop's amend is refused by the venue (here: its trigger would already
    # be reached): the engine logs ProtectionFailed and closes at market.
    script = {0: [Intent("enter_long", qty=10)], 1: [Intent("trail_stop", trail_distance=100)]}
    candles = [flat(0, 500_000), flat(1, 500_000), flat(2, 500_300), flat(3, 500_300)]
    state, _venue, log = backtest(candles, Scripted(script), EngineConfig(), SimConfig())
    stop_id = next(e.client_id for e in kinds(log, SubmitOrder) if e.purpose == "stop")
    # Replay the tail with the venue refusing the amend (as a live venue may).

    amend = next(e for e in log if type(e) is AmendOrder)
    out = step(state, CommandRejected(amend.ts, stop_id, "amend", "too late", 110001))
    (failed,) = kinds(out, ProtectionFailed)
    assert failed.client_id == stop_id and "amend refused: 110001" in failed.reason
    (close,) = kinds(out, SubmitOrder)
    assert (close.side, close.reduce_only, close.purpose) == (SELL, True, "protect_close")


def test_flip_at_1x_with_almost_all_equity_is_never_refused() -> None:
    # A stop-and-reverse at 1x: every 7 bars the other way, 99 % of equity, 3,000 bars of a
    # volatile random walk (~430 reversals, winners and losers). One netted order per flip;
    # the closed part's margin and PnL are settled before the opening part is charged.
    candles = walk(11, 3_000)
    script = {
        i: [Intent("enter_long" if (i // 7) % 2 == 0 else "enter_short", equity_pct=99)]
        for i in range(0, 3_000, 7)
    }
    config = EngineConfig(risk=RiskLimits(max_leverage=1, allow_flip=True))
    state, venue, log = backtest(candles, Scripted(script), config, SimConfig(leverage=1))
    assert_books_agree(state, venue, log)
    assert kinds(log, RiskRejected) == [] and kinds(log, OrderRejected) == []
    submits = kinds(log, SubmitOrder)
    assert len(submits) == len(script)
    flips = [s for s in submits if s.purpose == "flip"]
    assert len(flips) == len(script) - 1 and all(not s.reduce_only for s in flips)
    filled = {f.client_id for f in kinds(log, Fill)}
    assert filled == {s.client_id for s in submits}
    # Each flip reverses the whole position in one fill.
    pos = 0
    for f in kinds(log, Fill):
        signed = f.qty if f.side == BUY else -f.qty
        if pos:
            assert (pos + signed) * pos < 0
        pos += signed
    accepted = {e.client_id for e in kinds(log, OrderAccepted)}
    assert accepted == filled


@pytest.mark.skipif(not REAL_15M.exists(), reason="real data not present")
def test_stop_and_reverse_card_at_1x_on_real_data_turns_every_signal_into_a_fill(
    tmp_path: Path,
) -> None:
    # 8,736 real 15-minute BTCUSDT bars; an SMA 10/30 stop-and-reverse at 1x (sim and risk),
    # 99 % of equity: every cross becomes one fill, none is refused.
    from replay.backtest import BacktestRequest, execute

    card = tmp_path / "sar.yaml"
    card.write_text(
        "name: sar_1x\nsymbol: BTCUSDT\ntimeframes: {execution: 15m}\n"
        "features:\n  fast: {indicator: sma, period: 10}\n  slow: {indicator: sma, period: 30}\n"
        "blocks:\n"
        "  - {name: up, when: {cross_above: [fast, slow]}, then: {enter_long: {equity_pct: 99}}}\n"
        "  - {name: down, when: {cross_below: [fast, slow]},\n"
        "     then: {enter_short: {equity_pct: 99}}}\n"
        "risk: {allow_flip: true, max_leverage: 1}\nsim: {leverage: 1}\n"
    )
    req = BacktestRequest(
        card=card, data=REAL_15M, store=tmp_path / "runs", session="sar",
        write_report=False, show_progress=False,
    )  # fmt: skip
    outcome = execute(req)
    r = outcome.summary.refusals
    assert r.intents > 300 and r.refused == 0 and r.risk == {} and r.venue == {}
    from eventstore import EventStore
    from replay.verify import read_session, verify_session

    with EventStore(tmp_path / "runs") as store:
        events = [e for _, e in read_session(store, "sar")]
        fills = [e for e in events if type(e) is Fill]
        assert len(fills) == r.intents  # one fill per signal: flips are single orders
        assert verify_session(store, "sar").ok
