"""When venue events happen: stamped at the moment the bar's documented path reaches them.

The rule (adapters/sim/README.md, "Times"): the path ``open -> extreme -> extreme ->
close`` is walked at constant speed over the bar, so an event ``d`` ticks along a path of
``D`` ticks happens at ``open_ms + (close_ms - open_ms) * d // D``. A fill at the open is
stamped with the bar's open time; expiries and funding with its close. The expected times
below are worked out by hand from that rule.
"""

from __future__ import annotations

from engine.events import Fill, FundingPaid, Liquidated, OrderExpired, OrderTriggered
from tests.test_sim_support import MINUTE, bar, of, submit, venue


def test_a_market_fill_at_the_open_carries_the_bars_open_time():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "m", "Buy", 10))
    (fill,) = of(v.on_candle(bar(1, 104, 106, 103, 105)), Fill)
    assert fill.ts == MINUTE  # bar 1 opens at 1 min and closes at 2 min
    assert fill.price == 105  # the open plus one tick of slippage: the price of that moment


def test_a_limit_filled_inside_the_bar_is_stamped_where_the_path_reaches_it():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "lim", "Buy", 10, price=97))
    # open 100, high 102 (nearer: 2 vs 5), low 95, close 99: path 100->102->95->99, D = 13.
    # 97 is traded through on the second leg, 2 + (102 - 97) = 7 ticks along.
    (fill,) = of(v.on_candle(bar(1, 100, 102, 95, 99)), Fill)
    assert fill.price == 97
    assert fill.ts == MINUTE + MINUTE * 7 // 13 == 92_307


def test_a_stop_triggers_and_fills_at_the_same_moment_and_later_events_keep_time_order():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "e", "Buy", 10))
    v.on_candle(bar(1, 100, 100, 100, 100))  # flat bar: the entry fills at its open
    stop = submit(
        2 * MINUTE, "sl", "Sell", 10, trigger_price=96, trigger_direction=2, reduce_only=True
    )
    v.on_command(stop)
    v.on_command(submit(2 * MINUTE, "ioc", "Buy", 1, price=90, time_in_force="IOC"))
    # open 100, low 94 (nearer: 6 vs 8), high 108, close 104: path 100->94->108->104, D = 24.
    events = v.on_candle(bar(2, 100, 108, 94, 104))
    (trig,) = of(events, OrderTriggered)
    (fill,) = of(events, Fill)
    assert trig.ts == fill.ts == 2 * MINUTE + MINUTE * 4 // 24 == 130_000  # 96: 4 ticks along
    (expired,) = of(events, OrderExpired)
    assert expired.ts == 3 * MINUTE  # what ends with the bar is stamped at its close
    assert [e.ts for e in events] == sorted(e.ts for e in events)


def test_a_bar_that_never_moves_has_everything_at_its_open():
    v = venue()
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "m", "Buy", 10))
    (fill,) = of(v.on_candle(bar(1, 100, 100, 100, 100)), Fill)
    assert fill.ts == MINUTE


def test_a_liquidation_is_stamped_when_the_path_touches_the_liquidation_price():
    v = venue(balance_usdt=1_000, margin_mode="isolated")
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "e", "Buy", 10))
    v.on_candle(bar(1, 100, 100, 100, 100))  # fills at 101 (open + slippage), 10x
    # entry value 1010, IM 101, MM 5.05: ceil((1010 - 101 + 5.05) / 10) = ceil(91.405)
    assert v.liq_price() == 92
    # open 100, low 80 (nearer: 20 vs 30), high 130, close 110: D = 20 + 50 + 20 = 90.
    (liq,) = of(v.on_candle(bar(2, 100, 130, 80, 110)), Liquidated)
    assert liq.ts == 2 * MINUTE + MINUTE * (100 - 92) // 90 == 125_333


def test_funding_is_stamped_at_the_close_of_the_bar_that_settles_it():
    v = venue(funding_rate_e8=10_000, funding_interval_ms=2 * MINUTE)
    v.on_candle(bar(0, 100, 101, 99, 100))
    v.on_command(submit(MINUTE, "e", "Buy", 10))
    events = v.on_candle(bar(1, 100, 102, 98, 101))  # closes at 2 min: a settlement time
    (funding,) = of(events, FundingPaid)
    assert funding.ts == 2 * MINUTE
    assert of(events, Fill)[0].ts == MINUTE
