"""Trading stories against the simulated venue: orders in, venue events out.

Prices are in 1-USDT ticks and quantities in 1-unit lots (see test_sim_support), so a
fill of 10 lots at 101 is a notional of 1010 USDT. Default costs: taker 0.055 %,
maker 0.02 %, 1 tick of slippage against market and stop fills.
"""

from __future__ import annotations

from adapters.sim import SimVenue
from engine.events import (
    AmendOrder,
    CancelOrder,
    CommandRejected,
    Fill,
    FundingPaid,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
)
from tests.test_sim_support import MINUTE, USDT, bar, fee, of, only, order, submit, venue

TAKER = 55_000
MAKER = 20_000


def open_long(v: SimVenue, qty: int = 10, at_open: int = 100) -> Fill:
    """Warm the venue with one bar closing at 100, buy ``qty`` at market, fill on bar 1."""
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "entry", "Buy", qty))
    (fill,) = of(v.on_candle(bar(1, at_open, at_open + 2, at_open - 1, at_open + 1)), Fill)
    return fill


def test_market_order_fills_at_next_open_plus_slippage_not_on_its_own_bar():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    (ack,) = v.on_command(submit(MINUTE, "m1", "Buy", 10))
    assert isinstance(ack, OrderAccepted) and ack.status == "New" and ack.venue_id == "sim-o1"
    # The emulator may hand the venue the bar at whose close the order was stamped:
    # that bar must not fill it (it opened before the order existed).
    late = v.on_command(submit(2 * MINUTE, "m2", "Sell", 3))
    events = v.on_candle(bar(1, 104, 106, 103, 105))
    fills = of(events, Fill)
    assert [f.client_id for f in fills] == ["m1"]
    (f,) = fills
    assert (f.price, f.qty, f.is_maker) == (104 + 1, 10, False)
    assert f.fee == fee(105 * 10, TAKER)
    assert f.ts == MINUTE  # stamped when it happened: the bar's open
    assert isinstance(late[0], OrderAccepted)
    (f2,) = of(v.on_candle(bar(2, 107, 108, 100, 101)), Fill)
    assert (f2.client_id, f2.price, f2.qty) == ("m2", 107 - 1, 3)
    assert v.position.qty == 10 - 3
    assert "m1" not in v.orders and order(v, "m1").status == "Filled"


def test_limit_fills_partially_under_the_volume_cap_then_completes():
    v = venue(max_volume_pct=10)
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "bid", "Buy", 12, price=98))
    # Bar 1 trades down to 97 (through 98) on 50 lots: at most 5 of them are ours.
    (f1,) = of(v.on_candle(bar(1, 100, 100, 97, 99, volume=50)), Fill)
    assert (f1.price, f1.qty, f1.is_maker) == (98, 5, True)
    assert f1.fee == fee(98 * 5, MAKER)
    assert v.orders["bid"].status == "PartiallyFilled"
    # Bar 2 only touches 98: a touch is not a trade-through, so nothing fills.
    assert of(v.on_candle(bar(2, 99, 100, 98, 99, volume=50)), Fill) == []
    (f3,) = of(v.on_candle(bar(3, 99, 100, 96, 97, volume=50)), Fill)
    (f4,) = of(v.on_candle(bar(4, 97, 99, 95, 96, volume=50)), Fill)
    assert (f3.qty, f4.qty) == (5, 2)
    bid = order(v, "bid")
    assert bid.status == "Filled" and bid.cum_qty == 12 and bid.cum_value == 98 * 12 * USDT
    assert v.position.qty == 12 and v.position.entry_value == 98 * 12 * USDT


def test_amend_moves_a_resting_limit_into_the_market_then_it_fills():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "bid", "Buy", 10, price=95))
    assert of(v.on_candle(bar(1, 100, 101, 97, 99)), Fill) == []
    (amended,) = v.on_command(AmendOrder(2 * MINUTE, "bid", qty=8, price=98))
    assert isinstance(amended, OrderAmended)
    assert (amended.qty, amended.price, amended.venue_id) == (8, 98, "sim-o1")
    (f,) = of(v.on_candle(bar(2, 99, 100, 97, 98)), Fill)
    assert (f.price, f.qty, f.is_maker) == (98, 8, True)
    (rej,) = v.on_command(AmendOrder(3 * MINUTE, "bid", price=97))
    assert isinstance(rej, CommandRejected) and (rej.command, rej.code) == ("amend", 110001)
    (rej,) = v.on_command(CancelOrder(3 * MINUTE, "bid"))
    assert isinstance(rej, CommandRejected) and (rej.command, rej.code) == ("cancel", 110001)


def test_adding_to_a_long_averages_the_entry():
    v = venue()
    first = open_long(v, qty=10, at_open=100)  # fills at 101
    v.on_command(submit(2 * MINUTE, "add", "Buy", 10))
    (second,) = of(v.on_candle(bar(2, 110, 112, 109, 111)), Fill)
    assert (first.price, second.price) == (101, 111)
    assert v.position.qty == 20
    assert v.position.entry_value == (101 * 10 + 111 * 10) * USDT
    assert v.position.avg_entry_ticks(v.instrument.notional_unit) == 106.0


def test_partial_take_profit_realizes_only_the_closed_part():
    v = venue()
    open_long(v, qty=20)  # 20 at 101
    v.on_command(submit(2 * MINUTE, "tp1", "Sell", 5, price=110, reduce_only=True))
    (f,) = of(v.on_candle(bar(2, 105, 112, 104, 111)), Fill)
    assert (f.price, f.qty, f.is_maker) == (110, 5, True)
    assert v.position.qty == 15
    assert v.position.realized == (110 - 101) * 5 * USDT
    assert v.position.entry_value == 101 * 15 * USDT
    fees = fee(101 * 20, TAKER) + fee(110 * 5, MAKER)
    assert v.wallet == 10_000 * USDT + 45 * USDT - fees


def test_stop_market_triggers_on_touch_and_fills_at_trigger_minus_slippage():
    v = venue()
    open_long(v)  # 10 at 101
    (ack,) = v.on_command(
        submit(
            2 * MINUTE,
            "sl",
            "Sell",
            10,
            trigger_price=95,
            trigger_direction=2,
            reduce_only=True,
            purpose="stop",
        )
    )
    assert isinstance(ack, OrderAccepted) and ack.status == "Untriggered"
    assert of(v.on_candle(bar(2, 100, 101, 96, 97)), Fill) == []
    events = v.on_candle(bar(3, 97, 98, 95, 96))  # touches 95 exactly
    assert [type(e) for e in events] == [OrderTriggered, Fill]
    (f,) = of(events, Fill)
    assert (f.price, f.is_maker) == (95 - 1, False)
    assert v.position.qty == 0
    assert v.position.realized == (94 - 101) * 10 * USDT


def test_stop_gapped_through_fills_at_the_open_minus_slippage():
    v = venue(leverage=2)  # liquidation far away (at 10x it would be at 92)
    open_long(v)
    v.on_command(
        submit(
            2 * MINUTE, "sl", "Sell", 10, trigger_price=95, trigger_direction=2, reduce_only=True
        )
    )
    (f,) = of(v.on_candle(bar(2, 90, 92, 88, 91)), Fill)
    assert f.price == 90 - 1


def test_stop_limit_triggers_then_rests_as_a_maker_limit():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    # Buy if the price rises to 105, but pay at most 103.
    v.on_command(submit(MINUTE, "brk", "Buy", 4, price=103, trigger_price=105, trigger_direction=1))
    events = v.on_candle(bar(1, 101, 106, 100, 104))
    assert of(events, OrderTriggered) and not of(events, Fill)  # path: low, high, close 104
    (f,) = of(v.on_candle(bar(2, 104, 104, 102, 103)), Fill)
    assert (f.price, f.is_maker) == (103, True)


def _long_with_stop_and_target(both_hit: str):
    v = venue(both_hit=both_hit)
    open_long(v)  # 10 at 101
    v.on_command(
        submit(
            2 * MINUTE,
            "sl",
            "Sell",
            10,
            trigger_price=95,
            trigger_direction=2,
            reduce_only=True,
            purpose="stop",
        )
    )
    v.on_command(
        submit(2 * MINUTE, "tp", "Sell", 10, price=110, reduce_only=True, purpose="take_profit")
    )
    return v


def test_stop_and_target_in_one_bar_worse_takes_the_stop():
    v = _long_with_stop_and_target("worse")
    # The high (111) is nearer the open than the low (88), yet "worse" goes down first.
    events = v.on_candle(bar(2, 100, 111, 88, 100))
    (f,) = of(events, Fill)
    assert (f.client_id, f.price) == ("sl", 94)
    (c,) = of(events, OrderCancelled)
    assert (c.client_id, c.reason) == ("tp", "CancelByReduceOnly")
    assert v.orders == {}


def test_stop_and_target_in_one_bar_better_takes_the_target():
    v = _long_with_stop_and_target("better")
    events = v.on_candle(bar(2, 100, 111, 94, 100))  # low nearer: still the target first
    (f,) = of(events, Fill)
    assert (f.client_id, f.price) == ("tp", 110)
    assert of(events, OrderCancelled)[0].client_id == "sl"
    assert order(v, "sl").status == "Deactivated"


def test_stop_and_target_in_one_bar_path_follows_the_nearer_extreme():
    v = _long_with_stop_and_target("path")
    (f,) = of(v.on_candle(bar(2, 100, 111, 88, 100)), Fill)  # high 11 away, low 12
    assert f.client_id == "tp"
    w = _long_with_stop_and_target("path")
    (g,) = of(w.on_candle(bar(2, 100, 112, 90, 100)), Fill)  # low 10 away, high 12
    assert g.client_id == "sl"


def test_post_only_that_would_take_is_rejected_and_a_resting_one_fills_as_maker():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    (rej,) = v.on_command(submit(MINUTE, "po1", "Buy", 5, price=100, time_in_force="PostOnly"))
    assert isinstance(rej, OrderRejected) and rej.reason == "EC_PostOnlyWillTakeLiquidity"
    (ack,) = v.on_command(submit(MINUTE, "po2", "Buy", 5, price=99, time_in_force="PostOnly"))
    assert isinstance(ack, OrderAccepted)
    (f,) = of(v.on_candle(bar(1, 100, 100, 98, 99)), Fill)
    assert (f.price, f.is_maker, f.fee) == (99, True, fee(99 * 5, MAKER))


def test_a_crossing_limit_fills_as_taker_at_the_open_capped_by_its_price():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "x", "Buy", 5, price=102))
    (f,) = of(v.on_candle(bar(1, 100, 103, 99, 101)), Fill)
    assert (f.price, f.is_maker) == (100 + 1, False)
    v.on_command(submit(2 * MINUTE, "y", "Buy", 5, price=102))
    (g,) = of(v.on_candle(bar(2, 102, 104, 101, 103)), Fill)
    assert (g.price, g.is_maker) == (102, False)  # open + slippage would be 103 > limit


def test_reduce_only_is_trimmed_to_the_position_and_refused_when_it_would_open():
    v = venue()
    (rej,) = v.on_command(submit(0, "r0", "Sell", 5, reduce_only=True))
    assert isinstance(rej, OrderRejected) and rej.code == 110017
    open_long(v)  # 10 at 101
    ack, amended = v.on_command(submit(2 * MINUTE, "r1", "Sell", 15, price=120, reduce_only=True))
    assert isinstance(ack, OrderAccepted) and isinstance(amended, OrderAmended)
    assert amended.qty == 10
    rej = only(v.on_command(submit(2 * MINUTE, "r2", "Buy", 1, reduce_only=True)), OrderRejected)
    assert rej.code == 110017
    # Closing the position some other way cancels the resting reduce-only order.
    v.on_command(submit(2 * MINUTE, "out", "Sell", 10))
    events = v.on_candle(bar(2, 104, 105, 103, 104))
    assert [type(e) for e in events] == [Fill, OrderCancelled]
    (c,) = of(events, OrderCancelled)
    assert (c.client_id, c.reason) == ("r1", "CancelByReduceOnly")


def test_reduce_only_fill_never_flips_and_its_remainder_is_cancelled():
    v = venue()
    open_long(v)  # 10
    v.on_command(submit(2 * MINUTE, "tp", "Sell", 10, price=110, reduce_only=True))
    v.on_command(submit(2 * MINUTE, "cut", "Sell", 4))
    events = v.on_candle(bar(2, 104, 111, 103, 110))  # cut at the open, tp at 110
    fills = of(events, Fill)
    assert [(f.client_id, f.qty) for f in fills] == [("cut", 4), ("tp", 6)]
    assert v.position.qty == 0
    (c,) = of(events, OrderCancelled)
    assert c.client_id == "tp" and order(v, "tp").status == "PartiallyFilledCanceled"


def test_ioc_remainder_expires_after_its_first_bar_and_fok_is_all_or_nothing():
    v = venue(max_volume_pct=10)
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "ioc", "Buy", 8, price=99, time_in_force="IOC"))
    v.on_command(submit(MINUTE, "fok", "Buy", 8, price=99, time_in_force="FOK"))
    v.on_command(submit(MINUTE, "fok2", "Buy", 5, price=99, time_in_force="FOK"))
    events = v.on_candle(bar(1, 100, 100, 97, 98, volume=50))  # cap: 5 lots per order
    fills = of(events, Fill)
    assert [(f.client_id, f.qty, f.is_maker) for f in fills] == [
        ("ioc", 5, False),
        ("fok2", 5, False),
    ]
    expired = of(events, OrderExpired)
    assert [e.client_id for e in expired] == ["ioc", "fok"]
    assert order(v, "ioc").status == "PartiallyFilledCanceled"
    assert order(v, "fok").status == "Cancelled"
    assert v.orders == {}


def test_ioc_not_reached_expires_without_a_fill():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "ioc", "Buy", 8, price=90, time_in_force="IOC"))
    events = v.on_candle(bar(1, 100, 101, 95, 98))
    assert [type(e) for e in events] == [OrderExpired]


def test_insufficient_balance_is_refused_like_bybit():
    # Bybit's order cost = IM + fee to open + fee to close at the bankruptcy price
    # (buy: price * (1 - 1/leverage)). 1000 USDT at 10x, market buys valued at 100:
    # 99 lots: 990 + 9900 * 0.00055 + 9900 * 0.9 * 0.00055 = 990 + 5.445 + 4.9005
    #          = 1000.3455 (does not fit); 98 lots: 980 + 5.39 + 4.851 = 990.241 (fits).
    v = venue(balance_usdt=1_000, leverage=10)
    v.on_candle(bar(0, 100, 101, 99, 100))
    (rej,) = v.on_command(submit(MINUTE, "big", "Buy", 99))
    assert isinstance(rej, OrderRejected) and rej.code == 110007
    (ack,) = v.on_command(submit(MINUTE, "ok", "Buy", 98))
    assert isinstance(ack, OrderAccepted)
    # The accepted order's margin is reserved: 20 USDT are left, and 2 lots at 99 cost
    # 19.8 + 0.1089 + 0.098010 = 20.00691.
    assert v.available() == 1_000 * USDT - 980 * USDT
    rej2 = only(v.on_command(submit(MINUTE, "more", "Buy", 2, price=99)), OrderRejected)
    assert rej2.code == 110007
    # Orders that only reduce need no margin.
    v.on_candle(bar(1, 100, 100, 99, 100))
    assert isinstance(v.on_command(submit(2 * MINUTE, "r", "Sell", 50))[0], OrderAccepted)


def test_min_notional_duplicate_id_and_trigger_already_reached_are_refused():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    assert (
        only(v.on_command(submit(MINUTE, "tiny", "Buy", 1, price=4)), OrderRejected).code == 110094
    )
    assert isinstance(v.on_command(submit(MINUTE, "a", "Buy", 1, price=90))[0], OrderAccepted)
    assert only(v.on_command(submit(MINUTE, "a", "Buy", 1, price=90)), OrderRejected).code == 110072
    up = submit(MINUTE, "t1", "Buy", 1, trigger_price=100, trigger_direction=1)
    down = submit(MINUTE, "t2", "Sell", 1, trigger_price=100, trigger_direction=2)
    assert only(v.on_command(up), OrderRejected).code == 110092
    assert only(v.on_command(down), OrderRejected).code == 110093


def test_cancel_ends_an_order_and_a_cancelled_stop_is_deactivated():
    v = venue()
    open_long(v)
    v.on_command(
        submit(
            2 * MINUTE, "sl", "Sell", 10, trigger_price=95, trigger_direction=2, reduce_only=True
        )
    )
    (c,) = v.on_command(CancelOrder(2 * MINUTE, "sl"))
    assert isinstance(c, OrderCancelled) and c.reason == "CancelByUser"
    assert order(v, "sl").status == "Deactivated"
    assert of(v.on_candle(bar(2, 100, 100, 90, 91)), Fill) == []


def test_funding_is_paid_by_longs_at_each_settlement_the_bar_crosses():
    rate = 10_000  # 0.01 % per 8 h
    v = venue(funding_rate_e8=rate)
    hour = 60  # bars of 60 minutes
    v.on_candle(bar(0, 100, 101, 99, 100, minutes=hour))
    v.on_command(submit(hour * MINUTE, "e", "Buy", 10))
    paid: list[int] = []
    for i in range(1, 17):  # bars closing at 02:00 .. 17:00
        events = v.on_candle(bar(i, 100, 101, 99, 120, minutes=hour))
        paid += [e.amount for e in of(events, FundingPaid)]
    # Settlements at 08:00 and 16:00, on the position (10 lots) valued at the close (120).
    assert paid == [fee(120 * 10, rate)] * 2
    assert v.position.funding == sum(paid)
    assert v.wallet == 10_000 * USDT - fee(101 * 10, TAKER) - sum(paid)


def test_funding_series_overrides_the_constant_and_shorts_receive_positive_rates():
    eight_h = 8 * 3600 * 1000
    v = venue(funding_rate_e8=10_000, funding_series=((0, 20_000), (2 * eight_h, -5_000)))
    day = 1440
    v.on_candle(bar(0, 100, 101, 99, 100, minutes=day))  # first day: 08:00, 16:00, 24:00
    v.on_command(submit(day * MINUTE, "s", "Sell", 10))
    events = v.on_candle(bar(1, 100, 101, 99, 100, minutes=day))
    funding = of(events, FundingPaid)
    # Day 2 settles 32:00 and 40:00 (rate -0.005 %: shorts pay) and 48:00 (same entry).
    assert [e.rate_e8 for e in funding] == [-5_000, -5_000, -5_000]
    assert [e.amount for e in funding] == [fee(100 * 10, 5_000)] * 3


def test_leveraged_long_is_liquidated_at_the_bankruptcy_price():
    # 10 lots at 101 on 10x: IM 101, MM 0.5 % of 1010 = 5.05.
    # liq = ceil((1010 - 101 + 5.05) / 10) = 92; bankruptcy = ceil((1010 - 101) / 10) = 91.
    v = venue(leverage=10, margin_mode="isolated")
    open_long(v)
    assert (v.liq_price(), v.bankruptcy_price()) == (92, 91)
    v.on_command(submit(2 * MINUTE, "tp", "Sell", 10, price=130, reduce_only=True))
    v.on_command(submit(2 * MINUTE, "bid", "Buy", 1, price=80))
    assert of(v.on_candle(bar(2, 100, 101, 93, 95)), Fill) == []  # 93 > 92: survives
    events = v.on_candle(bar(3, 95, 96, 92, 94))
    names = [type(e).__name__ for e in events]
    assert names == ["OrderCancelled", "OrderCancelled", "Liquidated"]
    assert {e.reason for e in of(events, OrderCancelled)} == {"CancelAllBeforeLiq"}
    (liq,) = of(events, Liquidated)
    assert (liq.side, liq.price, liq.qty) == ("Sell", 91, 10)
    assert liq.fee == fee(91 * 10, 55_000)
    assert v.position.qty == 0 and v.liq_price() == 0
    assert v.position.realized == (91 - 101) * 10 * USDT
    assert v.wallet == 10_000 * USDT - 100 * USDT - fee(1010, TAKER) - liq.fee


def test_short_liquidation_and_stops_at_the_same_price_liquidation_first():
    v = venue(leverage=20, margin_mode="isolated")
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "s", "Sell", 10))
    v.on_candle(bar(1, 100, 101, 99, 100))  # short 10 at 99: entry 990
    # IM = 49.5, MM = 4.95: liq = floor((990 + 49.5 - 4.95) / 10) = 103.
    assert v.liq_price() == 103 and v.bankruptcy_price() == 103
    v.on_command(
        submit(
            2 * MINUTE, "sl", "Buy", 10, trigger_price=103, trigger_direction=1, reduce_only=True
        )
    )
    events = v.on_candle(bar(2, 100, 104, 100, 101))
    assert [type(e).__name__ for e in events] == ["OrderCancelled", "Liquidated"]


def test_an_order_larger_than_the_position_flips_it():
    v = venue()
    open_long(v)  # 10 at 101
    v.on_command(submit(2 * MINUTE, "flip", "Sell", 15))
    (f,) = of(v.on_candle(bar(2, 110, 111, 108, 109)), Fill)
    assert f.price == 109
    assert v.position.qty == -5
    assert v.position.entry_value == 109 * 5 * USDT  # the new short opened at the fill price
    assert v.position.realized == (109 - 101) * 10 * USDT


def test_an_order_stamped_inside_a_bar_waits_for_the_next_open():
    # The emulator can receive an order while a bar is forming: stamped after that bar's
    # open, it must not fill on it (the bar's open is in the order's past), and a limit
    # that crossed the last price when placed still fills as a taker at the next open.
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE + 30_000, "x", "Buy", 5, price=102))
    assert v.on_candle(bar(1, 100, 100, 95, 97)) == []
    (f,) = of(v.on_candle(bar(2, 98, 99, 97, 98)), Fill)
    assert (f.price, f.is_maker) == (98 + 1, False)


def test_an_amend_inside_a_bar_takes_effect_from_the_next_bar():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "bid", "Buy", 5, price=90))
    v.on_command(AmendOrder(MINUTE + 1, "bid", price=98))
    assert v.on_candle(bar(1, 100, 100, 96, 97)) == []  # would have filled at 98
    (f,) = of(v.on_candle(bar(2, 99, 100, 97, 98)), Fill)
    assert f.price == 98


def test_a_post_only_stop_limit_that_would_take_when_triggered_is_cancelled():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(
        submit(
            MINUTE,
            "pl",
            "Buy",
            5,
            price=106,
            trigger_price=105,
            trigger_direction=1,
            time_in_force="PostOnly",
        )
    )
    events = v.on_candle(bar(1, 101, 107, 100, 106))
    assert [type(e) for e in events] == [OrderTriggered, OrderCancelled]
    assert only(events[1:], OrderCancelled).reason == "EC_PostOnlyWillTakeLiquidity"


def test_a_crossing_limit_capped_by_volume_keeps_taking_at_later_opens():
    v = venue(max_volume_pct=10)
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "x", "Buy", 8, price=103))
    (f1,) = of(v.on_candle(bar(1, 100, 102, 99, 101, volume=50)), Fill)  # cap 5
    (f2,) = of(v.on_candle(bar(2, 101, 103, 100, 102, volume=50)), Fill)
    assert [(f.price, f.qty, f.is_maker) for f in (f1, f2)] == [(101, 5, False), (102, 3, False)]


def test_a_short_with_a_triggered_target_follows_both_hit_too():
    def session(both_hit: str) -> list[Fill]:
        v = venue(both_hit=both_hit)
        v.on_candle(bar(0, 100, 101, 99, 100))
        v.on_command(submit(MINUTE, "s", "Sell", 10))
        v.on_candle(bar(1, 100, 101, 99, 100))  # short 10 at 99
        v.on_command(
            submit(
                2 * MINUTE,
                "sl",
                "Buy",
                10,
                trigger_price=105,
                trigger_direction=1,
                reduce_only=True,
            )
        )
        v.on_command(
            submit(
                2 * MINUTE, "tp", "Buy", 10, trigger_price=92, trigger_direction=2, reduce_only=True
            )
        )
        # The high (106) is nearer the open than the low (91).
        return of(v.on_candle(bar(2, 100, 106, 91, 100)), Fill)

    assert [(f.client_id, f.price) for f in session("worse")] == [("sl", 105 + 1)]
    assert [(f.client_id, f.price) for f in session("better")] == [("tp", 92 + 1)]
    assert [f.client_id for f in session("path")] == ["sl"]
