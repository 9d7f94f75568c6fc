"""Trading stories told to the engine, with the venue played by hand.

Each test is one story: what the strategy wanted, what the venue said, and what the
engine must have done about it (commands, order states, position, money).
"""

from __future__ import annotations

import re

from engine.core import restore_state, snapshot_state
from engine.events import (
    BUY,
    CANCELLED,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    SELL,
    AmendOrder,
    CancelOrder,
    CommandRejected,
    Fill,
    FundingPaid,
    Halt,
    Halted,
    Heartbeat,
    Intent,
    IntentEmitted,
    Liquidated,
    OrderAmended,
    OrderRejected,
    ProtectionFailed,
    RiskRejected,
    SubmitOrder,
    TimerFired,
    TimerSet,
)
from engine.instrument import MONEY_SCALE, fee_for
from engine.intents import client_prefix
from tests.test_engine_support import (
    INITIAL,
    TAKER_E8,
    UNIT,
    Desk,
    of_type,
    risk,
    submits,
)

PRICE = 500_000  # 50,000.0 USDT in 0.1 ticks


def test_market_entry_sized_from_equity_pct_rounds_down_to_the_lot() -> None:
    # 10 % of 10,000 USDT at 50,000.0 is 0.02 BTC = 20 lots; 7 % is 0.014 -> 14 lots;
    # 7.77 % is 777 USDT -> 0.01554 BTC -> 15 lots (rounded down).
    d = Desk({0: [Intent("enter_long", equity_pct=7.77)]})
    out = d.close(PRICE)
    assert type(out[0]) is IntentEmitted
    (cmd,) = submits(out)
    assert (cmd.side, cmd.order_type, cmd.qty, cmd.reduce_only) == (BUY, "Market", 15, False)
    assert cmd.client_id == client_prefix("sess-0123456789abcdef") + "-1"
    assert len(cmd.client_id) <= 36 and re.fullmatch(r"[A-Za-z0-9_-]+", cmd.client_id)
    assert d.state.book.open[cmd.client_id].status == "Requested"


def test_risk_pct_sizing_uses_the_stop_distance() -> None:
    # Risk 1 % of 10,000 = 100 USDT; a stop 1,000 ticks (100 USDT per BTC) away allows
    # 1 BTC = 1000 lots. With stop_loss given instead of a distance: the same.
    d = Desk(
        {
            0: [Intent("enter_short", risk_pct=1.0, stop_distance=1000)],
            1: [Intent("exit")],
        },
        config=risk(max_leverage=0),
    )
    (cmd,) = submits(d.close(PRICE))
    assert (cmd.side, cmd.qty) == (SELL, 1000)
    d2 = Desk(
        {0: [Intent("enter_long", risk_pct=0.5, stop_loss=PRICE - 2000)]}, risk(max_leverage=0)
    )
    (cmd2,) = submits(d2.close(PRICE))
    assert cmd2.qty == 250  # 50 USDT / 200 USDT per BTC = 0.25 BTC


def test_limit_partial_fill_amend_then_fill() -> None:
    d = Desk({0: [Intent("place_limit", side=BUY, price=499_000.7, qty=10)]})
    (cmd,) = submits(d.close(PRICE))
    assert (cmd.order_type, cmd.price, cmd.qty) == ("Limit", 499_000, 10)  # buy rounds down
    d.accept(cmd)
    order = d.state.book.open[cmd.client_id]
    assert order.status == NEW and order.venue_id == "v-" + cmd.client_id
    d.fill(cmd, 4, 499_000, maker=True)
    assert order.status == PARTIALLY_FILLED and d.state.position.qty == 4
    d.feed(OrderAmended(d.now(), cmd.client_id, "v-" + cmd.client_id, qty=12, price=498_000))
    assert (order.qty, order.price, order.status) == (12, 498_000, PARTIALLY_FILLED)
    d.fill(cmd, 8, 498_000, maker=True)
    assert order.status == FILLED and cmd.client_id not in d.state.book.open
    fees = fee_for(499_000 * 4 * UNIT, 20_000) + fee_for(498_000 * 8 * UNIT, 20_000)
    assert d.state.position.qty == 12
    assert d.state.position.entry_value == (499_000 * 4 + 498_000 * 8) * UNIT
    assert d.state.balance == INITIAL - fees


def test_sell_limit_price_rounds_up() -> None:
    d = Desk({0: [Intent("place_limit", side=SELL, price=501_000.2, qty=3)]})
    (cmd,) = submits(d.close(PRICE))
    assert (cmd.side, cmd.price) == (SELL, 501_001)


def test_entry_with_stop_and_target_adds_partial_take_profit_and_stop_out() -> None:
    d = Desk(
        {
            0: [Intent("enter_long", qty=10, stop_loss=490_000, take_profit=520_000.5)],
            2: [Intent("add", qty=6)],
            4: [Intent("reduce", reduce_pct=50)],
        }
    )
    (entry,) = submits(d.close(PRICE))
    # The levels travel on the entry (attached, Full mode): nothing is naked after the fill.
    assert (entry.stop_loss, entry.take_profit) == (490_000, 520_001)
    d.accept(entry)
    out = d.fill(entry, 10, 500_010)
    assert submits(out) == []  # the venue armed them at the fill; the engine adopts them
    stop, tp = d.armed(entry, "stop"), d.armed(entry, "take_profit")
    assert (stop.purpose, stop.side, stop.reduce_only, stop.qty) == ("stop", SELL, True, 10)
    assert (stop.trigger_price, stop.trigger_direction) == (490_000, 2)
    assert (tp.purpose, tp.trigger_price, tp.trigger_direction) == ("take_profit", 520_001, 1)
    d.close(PRICE + 100)
    (add,) = submits(d.close(PRICE + 200))  # bar 2: add 6
    assert (add.purpose, add.qty, add.reduce_only) == ("add", 6, False)
    d.accept(add)
    out = d.fill(add, 6, 500_300)
    assert of_type(out, AmendOrder) == []  # Full mode: the venue sizes them to the position
    for a in (stop, tp):
        d.feed(OrderAmended(d.now(), a.client_id, "v-" + a.client_id, qty=16))
    d.close(PRICE + 300)
    (red,) = submits(d.close(PRICE + 400))  # bar 4: reduce 50 %
    assert (red.side, red.qty, red.reduce_only, red.purpose) == (SELL, 8, True, "reduce")
    d.accept(red)
    out = d.fill(red, 8, 500_400)
    assert of_type(out, AmendOrder) == []
    for a in (stop, tp):
        d.feed(OrderAmended(d.now(), a.client_id, "v-" + a.client_id, qty=8))
    # Stop out: the stop triggers and fills; the take-profit is cancelled (flat).
    d.trigger(stop)
    out = d.fill(stop, 8, 489_990)
    assert d.state.position.qty == 0
    (cancel,) = of_type(out, CancelOrder)
    assert cancel.client_id == tp.client_id
    d.cancelled(tp.client_id)
    assert d.state.book.open == {}
    # Realized PnL, by hand: 16 lots bought for 10@500010 + 6@500300; 8 sold at 500400
    # releasing half the basis; 8 stopped at 489990 releasing the rest.
    basis = (10 * 500_010 + 6 * 500_300) * UNIT
    released = basis * 8 // 16
    realized = (8 * 500_400 * UNIT - released) + (8 * 489_990 * UNIT - (basis - released))
    assert d.state.position.realized == realized
    fees = sum(e.fee for e in d.log if type(e) is Fill)
    assert d.state.balance == INITIAL + realized - fees
    assert d.state.stop_price == 0 and d.state.tp_price == 0


def test_exit_flattens_and_cancels_protective_orders() -> None:
    d = Desk(
        {0: [Intent("enter_short", qty=5, stop_loss=510_000)], 2: [Intent("exit")]},
    )
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    assert submits(d.fill(entry, 5, PRICE)) == []  # armed by the venue
    stop = d.armed(entry, "stop")
    assert (stop.side, stop.trigger_direction) == (BUY, 1)  # a short's stop: rises to it
    d.close(PRICE)
    out = d.close(PRICE - 50)
    (cancel,) = of_type(out, CancelOrder)
    (ex,) = submits(out)
    assert cancel.client_id == stop.client_id
    assert (ex.side, ex.qty, ex.reduce_only, ex.purpose) == (BUY, 5, True, "exit")
    d.cancelled(stop.client_id)
    d.accept(ex)
    out = d.fill(ex, 5, PRICE - 40)
    assert d.state.position.qty == 0 and submits(out) == []
    assert d.state.book.open == {}


def test_each_risk_limit_rejects_with_its_reason() -> None:
    cases = [
        (risk(max_position_notional=100 * MONEY_SCALE), Intent("enter_long", qty=3), "notional"),
        (risk(max_leverage=2.0), Intent("enter_long", equity_pct=250), "leverage"),
        (risk(), Intent("enter_long", equity_pct=0.001), "min qty"),
        (risk(), Intent("enter_long", qty=0, equity_pct=0.01), "min qty"),
        (risk(max_leverage=0), Intent("enter_long", qty=2_000_000), "max qty"),
        (risk(), Intent("add", qty=1), "no position"),
        (risk(), Intent("reduce", reduce_pct=50), "no position"),
        (risk(), Intent("set_stop", price=1), "no position"),
        (risk(), Intent("place_limit", price=1.0, qty=1), "side"),
        (risk(), Intent("fly_to_moon"), "unknown action"),
    ]
    for config, intent, reason in cases:
        d = Desk({0: [intent]}, config=config)
        out = d.close(PRICE)
        assert submits(out) == [], intent
        (rej,) = of_type(out, RiskRejected)
        assert reason in rej.reason and rej.intent == intent


def test_min_notional_and_max_open_orders() -> None:
    d = Desk({0: [Intent("enter_long", qty=1)]})
    out = d.close(40_000)  # 4,000.0 USDT * 0.001 = 4 USDT < 5 USDT minimum
    assert "below min" in of_type(out, RiskRejected)[0].reason
    limits = [Intent("place_limit", side=BUY, price=PRICE - 100 * i, qty=1) for i in range(1, 5)]
    d = Desk({0: limits}, config=risk(max_open_orders=3))
    out = d.close(PRICE)
    assert len(submits(out)) == 3
    assert "max open orders" in of_type(out, RiskRejected)[0].reason


def test_opposite_entry_refused_unless_flip_allowed() -> None:
    for allow, expect in ((False, 0), (True, 1)):
        d = Desk(
            {0: [Intent("enter_long", qty=4)], 1: [Intent("enter_short", qty=3)]},
            config=risk(allow_flip=allow),
        )
        (entry,) = submits(d.close(PRICE))
        d.accept(entry)
        d.fill(entry, 4, PRICE)
        out = d.close(PRICE)
        cmds = submits(out)
        assert len(cmds) == expect
        if allow:  # one order: the 4 held plus the 3 wanted, netted by the venue
            (flip,) = cmds
            assert (flip.side, flip.qty, flip.reduce_only, flip.purpose) == (SELL, 7, False, "flip")
        else:
            assert "allow_flip" in of_type(out, RiskRejected)[0].reason


def test_daily_loss_limit_halts_entries_until_next_utc_day_but_not_exits() -> None:
    # Long 1 BTC at 50,000; a drop to 47,000 loses 3,000 of 10,000 equity (30 %).
    day = 24 * 60
    script = {
        0: [Intent("enter_long", qty=1000)],
        2: [Intent("add", qty=10)],
        3: [Intent("exit")],
        day + 1: [Intent("enter_long", qty=10)],
    }
    d = Desk(script, config=risk(daily_loss_limit_pct=20, max_leverage=0))
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    d.fill(entry, 1000, PRICE)
    d.close(470_000)
    assert d.state.day_halted and d.strategy.seen[-1].halted
    out = d.close(470_000)
    assert "daily loss" in of_type(out, RiskRejected)[0].reason
    (ex,) = submits(d.close(470_000))
    assert ex.purpose == "exit"
    d.accept(ex)
    d.fill(ex, 1000, 470_000)
    while d.bar <= day:
        d.close(470_000)
    out = d.close(470_000)  # first bar of the next UTC day
    assert not d.state.day_halted
    assert [c.purpose for c in submits(out)] == ["entry"]


def test_halt_cancels_everything_and_blocks_entries_but_not_exits() -> None:
    d = Desk(
        {
            0: [Intent("enter_long", qty=5, stop_loss=490_000)],
            1: [Intent("place_limit", side=BUY, price=495_000, qty=2)],
            2: [Intent("enter_long", qty=1)],
            3: [Intent("exit")],
        }
    )
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    assert submits(d.fill(entry, 5, PRICE)) == []  # armed by the venue
    stop = d.armed(entry, "stop")
    (lim,) = submits(d.close(PRICE))
    d.accept(lim)
    out = d.feed(Halt(d.now(), "operator pressed the button"))
    assert type(out[0]) is Halted
    assert sorted(c.client_id for c in of_type(out, CancelOrder)) == sorted(
        [stop.client_id, lim.client_id]
    )
    out = d.close(PRICE)
    assert "halted" in of_type(out, RiskRejected)[0].reason and d.strategy.seen[-1].halted
    (ex,) = submits(d.close(PRICE))
    assert (ex.purpose, ex.qty, ex.reduce_only) == ("exit", 5, True)


def test_limit_style_times_out_then_sends_the_remainder_at_market() -> None:
    d = Desk(
        {0: [Intent("enter_long", qty=10, style="limit", offset=50, timeout_bars=2)]},
    )
    (lim,) = submits(d.close(PRICE))
    assert (lim.order_type, lim.price) == ("Limit", PRICE - 50)
    d.accept(lim)
    d.fill(lim, 3, PRICE - 50, maker=True)
    assert of_type(d.close(PRICE + 10), CancelOrder) == []
    (cancel,) = of_type(d.close(PRICE + 20), CancelOrder)
    assert (cancel.client_id, cancel.reason) == (lim.client_id, "timeout")
    out = d.cancelled(lim.client_id)
    (mkt,) = submits(out)
    assert (mkt.order_type, mkt.qty, mkt.side) == ("Market", 7, BUY)
    assert d.state.book.closed[lim.client_id].status == "PartiallyFilledCanceled"


def test_refused_timeout_cancel_sends_no_market_order() -> None:
    d = Desk({0: [Intent("enter_long", qty=10, style="limit", timeout_bars=1)]})
    (lim,) = submits(d.close(PRICE))
    d.accept(lim)
    d.close(PRICE)
    d.feed(CommandRejected(d.now(), lim.client_id, "cancel", "order filled", 110001))
    out = d.fill(lim, 10, PRICE)
    assert submits(out) == [] and d.state.position.qty == 10


def test_twap_slices_on_timers() -> None:
    d = Desk({0: [Intent("enter_long", qty=10, style="twap", slices=3, slice_every_bars=2)]})
    out = d.close(PRICE)
    (first,) = submits(out)
    (timer,) = of_type(out, TimerSet)
    assert first.qty == 3 and timer.due == d.ts + 2 * 60_000
    assert submits(d.close(PRICE)) == []
    out = d.close(PRICE)
    assert [type(e) for e in out[:2]] == [TimerFired, type(first)]
    assert submits(out)[0].qty == 3
    d.close(PRICE)
    last = submits(d.close(PRICE))
    assert [c.qty for c in last] == [4]  # the last slice takes the remainder
    assert d.state.plans == {} and d.state.timers == []


def test_iceberg_slices_are_limits_and_halt_stops_the_plan() -> None:
    d = Desk({0: [Intent("enter_short", qty=9, style="iceberg", slices=3, offset=5)]})
    (first,) = submits(d.close(PRICE))
    assert (first.order_type, first.price, first.qty) == ("Limit", PRICE + 5, 3)
    d.feed(Halt(d.now(), "stop"))
    for _ in range(3):
        assert submits(d.close(PRICE)) == []
    assert d.state.plans == {}


def test_trailing_stop_moves_toward_price_never_away() -> None:
    d = Desk({0: [Intent("enter_long", qty=5)], 1: [Intent("trail_stop", trail_distance=100)]})
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    d.fill(entry, 5, PRICE)
    (stop,) = submits(d.close(PRICE))
    assert stop.trigger_price == PRICE - 100
    d.accept(stop)
    (amend,) = of_type(d.close(PRICE + 300), AmendOrder)
    assert amend.trigger_price == PRICE + 200
    d.feed(OrderAmended(d.now(), stop.client_id, "v-" + stop.client_id, trigger_price=PRICE + 200))
    assert of_type(d.close(PRICE + 100), AmendOrder) == []  # the price fell: stop stays
    assert d.state.stop_price == PRICE + 200


def test_set_stop_then_move_it_by_amend() -> None:
    d = Desk(
        {
            0: [Intent("enter_long", qty=5)],
            1: [Intent("set_stop", price=495_000.5)],
            2: [Intent("set_stop", price=497_000)],
            3: [Intent("set_take_profit", price=PRICE - 1)],
        }
    )
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    d.fill(entry, 5, PRICE)
    (stop,) = submits(d.close(PRICE))
    assert stop.trigger_price == 495_001  # a sell-side trigger rounds up
    d.accept(stop)
    (amend,) = of_type(d.close(PRICE), AmendOrder)
    assert (amend.client_id, amend.trigger_price, amend.qty) == (stop.client_id, 497_000, 0)
    out = d.close(PRICE)  # a target already through the price cannot exist: close at once
    assert of_type(out, RiskRejected) == []
    (failed,) = of_type(out, ProtectionFailed)
    assert "wrong side" in failed.reason and failed.purpose == "take_profit"
    (close,) = submits(out)
    assert (close.side, close.qty, close.reduce_only) == (SELL, 5, True)
    assert (close.purpose, failed.close_id) == ("protect_close", close.client_id)


def test_intents_ignored_while_cold_or_backfilling() -> None:
    d = Desk({0: [Intent("enter_long", qty=1)], 1: [Intent("enter_long", qty=1)]})
    d.strategy.warm_after = 1
    assert d.close(PRICE) == []  # not warm yet
    assert d.close(PRICE, backfill=True) == []  # warm, but a backfill candle
    assert d.state.book.open == {}


def test_illegal_transitions_are_reported_and_not_applied() -> None:
    d = Desk({0: [Intent("enter_long", qty=5)]})
    (cmd,) = submits(d.close(PRICE))
    d.accept(cmd)
    (rej,) = d.accept(cmd)  # accepted twice
    assert (rej.event, rej.state) == ("OrderAccepted", NEW)
    d.fill(cmd, 3, PRICE, exec_id="x1")
    (dup,) = d.fill(cmd, 3, PRICE, exec_id="x1")
    assert dup.reason == "duplicate exec_id"
    (over,) = d.fill(cmd, 3, PRICE)
    assert "overfill" in over.reason
    assert d.state.position.qty == 3
    ghost = cmd.__class__(
        **{**{f: getattr(cmd, f) for f in cmd.__struct_fields__}, "client_id": "ghost"}
    )
    (unknown,) = d.fill(ghost, 1, PRICE)
    assert unknown.reason == "unknown client_id"
    d.fill(cmd, 2, PRICE)
    (late,) = d.fill(cmd, 1, PRICE)
    assert late.state == FILLED and d.state.position.qty == 5
    (rej2,) = d.feed(OrderRejected(d.now(), cmd.client_id, "too late"))
    assert rej2.event == "OrderRejected"


def test_conditional_order_cannot_fill_before_trigger_and_deactivates_on_cancel() -> None:
    d = Desk({0: [Intent("enter_long", qty=5, stop_loss=490_000)]})
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    assert submits(d.fill(entry, 5, PRICE)) == []  # armed by the venue
    stop = d.armed(entry, "stop")
    (rej,) = d.fill(stop, 5, 490_000)
    assert rej.state == "Untriggered" and d.state.position.qty == 5
    d.cancelled(stop.client_id, "CancelByUser")
    assert d.state.book.closed[stop.client_id].status == "Deactivated"
    assert d.state.stop_id == ""


def test_funding_and_liquidation_are_counted_once() -> None:
    d = Desk({0: [Intent("enter_long", qty=100, stop_loss=400_000)]})
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    assert submits(d.fill(entry, 100, PRICE)) == []  # armed by the venue
    stop = d.armed(entry, "stop")
    f = FundingPaid(d.now(), "BTCUSDT", "fund-1", amount=12_345)
    d.feed(f)
    (dup,) = d.feed(f)
    assert dup.reason == "duplicate exec_id" and d.state.position.funding == 12_345
    liq = Liquidated(d.now(), "BTCUSDT", "liq-1", SELL, 450_000, 100, fee=777)
    out = d.feed(liq)
    assert [c.client_id for c in of_type(out, CancelOrder)] == [stop.client_id]
    assert of_type(d.feed(liq), type(dup))  # refused the second time
    pos = d.state.position
    entry_fee = fee_for(PRICE * 100 * UNIT, TAKER_E8)
    assert pos.qty == 0 and pos.realized == (450_000 - PRICE) * 100 * UNIT
    assert d.state.balance == INITIAL + pos.realized - entry_fee - 777 - 12_345


def test_cancel_all_cancels_orders_and_clears_levels() -> None:
    d = Desk(
        {
            0: [Intent("place_limit", side=BUY, price=490_000, qty=2)],
            1: [Intent("cancel_all")],
        }
    )
    (lim,) = submits(d.close(PRICE))
    d.accept(lim)
    (c,) = of_type(d.close(PRICE), CancelOrder)
    assert c.client_id == lim.client_id
    d.cancelled(lim.client_id)
    assert d.state.book.closed[lim.client_id].status == CANCELLED


def test_market_context_reports_position_and_equity_at_the_close() -> None:
    d = Desk({0: [Intent("enter_long", qty=20)]})
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    d.fill(entry, 20, PRICE)
    d.close(PRICE + 1_000)
    ctx = d.strategy.seen[-1]
    fee = fee_for(PRICE * 20 * UNIT, TAKER_E8)
    assert (ctx.position_qty, ctx.bars_in_trade, ctx.open_orders) == (20, 1, 0)
    assert ctx.unrealized == 1_000 * 20 * UNIT
    assert ctx.equity == INITIAL - fee + 1_000 * 20 * UNIT and ctx.balance == INITIAL - fee
    assert abs(ctx.avg_entry - PRICE) < 1e-9
    assert abs(ctx.unrealized_pct - 100 * 1_000 / PRICE) < 1e-9


def test_a_repeated_entry_while_the_first_is_still_working_is_refused() -> None:
    entry = Intent("enter_long", qty=5, style="limit", offset=100)
    d = Desk({0: [entry], 1: [entry], 3: [entry]})
    (lim,) = submits(d.close(PRICE))
    d.accept(lim)
    out = d.close(PRICE)
    assert submits(out) == [] and of_type(out, RiskRejected)[0].reason == "entry already pending"
    d.fill(lim, 5, PRICE - 100, maker=True)
    d.close(PRICE)
    (add,) = submits(d.close(PRICE))  # in position now: the same intent adds
    assert (add.purpose, add.qty) == ("add", 5)


def test_a_stop_out_while_slicing_in_drops_the_rest_of_the_plan() -> None:
    plan = Intent("enter_long", qty=9, style="twap", slices=3, stop_loss=490_000)
    d = Desk({0: [plan]})
    (first,) = submits(d.close(PRICE))
    d.accept(first)
    assert submits(d.fill(first, 3, PRICE)) == []  # armed by the venue
    stop = d.armed(first, "stop")
    d.trigger(stop)
    d.fill(stop, 3, 489_900)
    assert d.state.position.qty == 0 and d.state.plans == {} and d.state.timers == []
    for _ in range(3):
        assert submits(d.close(PRICE)) == []


def test_millisecond_slices_fire_on_heartbeats_between_candles() -> None:
    d = Desk({0: [Intent("enter_short", qty=6, style="twap", slices=3, slice_every_ms=20_000)]})
    out = d.close(PRICE)
    assert [c.qty for c in submits(out)] == [2]
    (timer,) = of_type(out, TimerSet)
    assert timer.due == d.ts + 20_000
    assert d.feed(Heartbeat(d.ts + 19_999)) == []
    out = d.feed(Heartbeat(d.ts + 20_000))
    assert [type(e) for e in out] == [TimerFired, SubmitOrder, TimerSet]
    out = d.close(PRICE)  # the candle at +60 s: the last slice is due too
    assert [c.qty for c in submits(out)] == [2]
    assert sum(c.qty for c in submits(d.derived)) == 6


def test_absurd_numbers_in_intents_are_refused_and_the_state_still_snapshots() -> None:
    huge = [
        Intent("enter_long", qty=5, style="limit", offset=1e200),
        Intent("enter_long", qty=5, stop_distance=float("nan"), risk_pct=1),
        Intent("enter_long", qty=5, style="limit", timeout_bars=2**70),
        Intent("enter_long", qty=5, style="sideways"),
    ]
    d = Desk({0: huge})
    out = d.close(PRICE)
    reasons = [r.reason for r in of_type(out, RiskRejected)]
    assert reasons == [
        "intent has a number out of range",
        "intent has a non-finite number",
        "intent has a number out of range",
        "unknown style 'sideways'",
    ]
    assert restore_state(snapshot_state(d.state), d.strategy).book.open == {}


def test_rejected_entry_leaves_no_protection_behind() -> None:
    d = Desk({0: [Intent("enter_long", qty=5, stop_loss=490_000, take_profit=510_000)]})
    (entry,) = submits(d.close(PRICE))
    assert entry.client_id in d.state.protect
    d.feed(OrderRejected(d.now(), entry.client_id, "insufficient balance", 110007))
    assert d.state.book.closed[entry.client_id].status == "Rejected"
    assert d.state.protect == {} and d.state.position.qty == 0
    assert submits(d.close(PRICE)) == []


def test_refused_amend_of_a_stop_closes_the_position_and_is_not_retried() -> None:
    d = Desk(
        {
            0: [Intent("enter_long", qty=4)],
            1: [Intent("set_stop", price=490_000)],
            3: [Intent("add", qty=2)],
        }
    )
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    d.fill(entry, 4, PRICE)
    (stop,) = submits(d.close(PRICE))  # the engine's own stop (not attached)
    d.accept(stop)
    d.close(PRICE)
    (add,) = submits(d.close(PRICE))
    d.accept(add)
    d.fill(add, 1, PRICE)  # the stop must grow to 5: one amend goes out
    (amend,) = of_type(d.derived, AmendOrder)
    assert amend.qty == 5
    out = d.feed(CommandRejected(d.now(), stop.client_id, "amend", "too late", 110001))
    # The stop the card asked for cannot be kept: the position is closed at market.
    (failed,) = of_type(out, ProtectionFailed)
    assert failed.client_id == stop.client_id and "amend refused" in failed.reason
    (close,) = submits(out)
    assert (close.side, close.qty, close.reduce_only, close.purpose) == (
        SELL,
        5,
        True,
        "protect_close",
    )
    assert of_type(d.close(PRICE), AmendOrder) == []  # no blind retry on a candle


def test_venue_cancelling_a_reduce_only_stop_clears_it() -> None:
    d = Desk({0: [Intent("enter_short", qty=3, stop_loss=505_000)]})
    (entry,) = submits(d.close(PRICE))
    d.accept(entry)
    assert submits(d.fill(entry, 3, PRICE)) == []  # armed by the venue
    stop = d.armed(entry, "stop")
    d.cancelled(stop.client_id, "CancelByReduceOnly")
    assert d.state.stop_id == "" and d.state.book.open == {}
    assert d.state.book.closed[stop.client_id].status == "Deactivated"
