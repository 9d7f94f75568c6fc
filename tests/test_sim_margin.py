"""Properties of the margin formulas (adapters/sim/margin.py) over random positions.

The bankruptcy price is where the position's loss uses up its initial margin, the
liquidation price where the loss leaves only the maintenance margin; both are rounded
toward the entry, so the venue never lets a loss run past what the formula promises.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adapters.sim import SimConfig, SimVenue, SimVenueError
from adapters.sim.margin import (
    bankruptcy_price,
    initial_margin,
    liquidation_price,
    maintenance_margin,
)
from tests.test_sim_support import INSTRUMENT

UNIT = 10_000  # BTCUSDT: 0.1 tick * 0.001 lot = 1e-4 USDT = 10_000 money units

position_st = st.tuples(
    st.integers(1, 100_000),  # lots
    st.integers(10_000, 2_000_000),  # average entry in ticks
    st.integers(1, 100),  # leverage
    st.integers(0, 2_000_000),  # maintenance margin rate, 1e-8 (up to 2 %)
    st.booleans(),  # long
)


def loss(long: bool, lots: int, entry_value: int, ticks: int) -> int:
    exit_value = lots * ticks * UNIT
    return entry_value - exit_value if long else exit_value - entry_value


@settings(max_examples=400, deadline=None)
@given(position_st)
def test_bankruptcy_price_loses_at_most_the_margin_and_one_tick_further_loses_more(pos):
    lots, entry, lev, _, long = pos
    qty = lots if long else -lots
    ev = lots * entry * UNIT
    im = initial_margin(ev, lev)
    bp = bankruptcy_price(qty, ev, UNIT, lev)
    assert bp >= 1
    assert loss(long, lots, ev, bp) <= im
    beyond = bp - 1 if long else bp + 1
    if beyond >= 1:
        assert loss(long, lots, ev, beyond) > im


@settings(max_examples=400, deadline=None)
@given(position_st)
def test_liquidation_comes_before_bankruptcy_and_leaves_the_maintenance_margin(pos):
    lots, entry, lev, mmr, long = pos
    assume(lev * mmr < 10**8)  # the venue refuses a leverage whose IM rate is below the MM rate
    qty = lots if long else -lots
    ev = lots * entry * UNIT
    im, mm = initial_margin(ev, lev), maintenance_margin(ev, mmr)
    lp = liquidation_price(qty, ev, UNIT, lev, mmr)
    bp = bankruptcy_price(qty, ev, UNIT, lev)
    if long:
        assert bp <= lp <= entry or lp == 0
    else:
        assert entry <= lp <= bp
    if lp > 0:
        # At the liquidation price the margin left is at least the maintenance margin.
        assert loss(long, lots, ev, lp) <= im - mm
        beyond = lp - 1 if long else lp + 1
        if beyond >= 1:
            assert loss(long, lots, ev, beyond) > im - mm


def test_flat_has_no_prices_and_margins_round_up():
    assert liquidation_price(0, 0, UNIT, 10, 500_000) == 0
    assert bankruptcy_price(0, 0, UNIT, 10) == 0
    assert initial_margin(101, 10) == 11
    assert maintenance_margin(1, 1) == 1


def test_the_venue_refuses_a_leverage_whose_initial_margin_is_below_maintenance():
    with pytest.raises(SimVenueError, match="leverage"):
        SimVenue(INSTRUMENT, SimConfig(leverage=200, maintenance_margin_e8=500_000), 1)
    venue = SimVenue(INSTRUMENT, SimConfig(leverage=100, maintenance_margin_e8=500_000), 1)
    with pytest.raises(SimVenueError, match="leverage"):
        venue.set_leverage(250)
