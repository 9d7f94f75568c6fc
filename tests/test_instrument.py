"""Fixed-point numbers: venue decimal strings <-> ticks/lots/money, checked against Decimal."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.events import InstrumentSpec
from engine.instrument import (
    BTCUSDT,
    MONEY_SCALE,
    RATE_SCALE,
    Instrument,
    InstrumentError,
    OffGridError,
    fee_for,
    money_from_str,
    money_to_str,
)

# Grids seen on Bybit linear contracts (tick sizes and qty steps as the venue prints them).
TICKS = ["0.1", "0.01", "0.5", "0.05", "0.0001", "0.00001", "1", "0.005", "10"]
STEPS = ["0.001", "0.01", "0.1", "1", "10", "100", "0.0001"]


@st.composite
def instruments(draw: st.DrawFn) -> Instrument:
    tick, step = draw(st.sampled_from(TICKS)), draw(st.sampled_from(STEPS))
    if Decimal(tick) * Decimal(step) * MONEY_SCALE % 1:
        tick, step = "0.1", "0.001"
    return Instrument(InstrumentSpec(symbol="XUSDT", tick_size=tick, qty_step=step, min_qty=step))


def venue_string(value: Decimal) -> str:
    """How a venue might print a grid value: plain notation, possibly with extra zeros."""
    return f"{value:f}"


@settings(max_examples=200, deadline=None)
@given(inst=instruments(), ticks=st.integers(0, 10**12), zeros=st.integers(0, 3))
def test_prices_round_trip_exactly(inst: Instrument, ticks: int, zeros: int) -> None:
    price = Decimal(ticks) * inst.tick
    text = venue_string(price) + ("0" * zeros if "." in venue_string(price) else "")
    assert inst.price_to_ticks(text) == ticks
    back = inst.ticks_to_price(ticks)
    assert Decimal(back) == price
    assert inst.price_to_ticks(back) == ticks
    assert "E" not in back and "e" not in back


@settings(max_examples=200, deadline=None)
@given(inst=instruments(), lots=st.integers(0, 10**12))
def test_quantities_round_trip_exactly(inst: Instrument, lots: int) -> None:
    qty = Decimal(lots) * inst.step
    assert inst.qty_to_lots(venue_string(qty)) == lots
    back = inst.lots_to_qty(lots)
    assert Decimal(back) == qty
    assert inst.qty_to_lots(back) == lots


@settings(max_examples=200, deadline=None)
@given(
    inst=instruments(),
    ticks=st.integers(0, 10**9),
    frac=st.integers(1, 999),
    mode=st.sampled_from([ROUND_FLOOR, ROUND_CEILING, ROUND_HALF_EVEN, ROUND_DOWN]),
)
def test_off_grid_prices_need_a_rounding_mode(
    inst: Instrument, ticks: int, frac: int, mode: str
) -> None:
    off = Decimal(ticks) * inst.tick + inst.tick * Decimal(frac) / 1000
    with pytest.raises(OffGridError):
        inst.price_to_ticks(venue_string(off))
    with pytest.raises(OffGridError):
        inst.qty_to_lots(venue_string(Decimal(ticks) * inst.step + inst.step / 2))
    expected = int((off / inst.tick).to_integral_value(rounding=mode))
    assert inst.price_to_ticks(venue_string(off), rounding=mode) == expected
    assert expected in (ticks, ticks + 1)


@settings(max_examples=200, deadline=None)
@given(inst=instruments(), ticks=st.integers(0, 10**8), lots=st.integers(0, 10**8))
def test_notional_in_ticks_and_lots_equals_decimal_arithmetic(
    inst: Instrument, ticks: int, lots: int
) -> None:
    notional = inst.notional(ticks, lots)
    assume(notional < 2**63)  # money is an int64 in the log
    price = Decimal(inst.ticks_to_price(ticks))
    qty = Decimal(inst.lots_to_qty(lots))
    assert Decimal(notional) == price * qty * MONEY_SCALE
    assert notional == money_from_str(price * qty)
    assert Decimal(money_to_str(notional)) == price * qty


@settings(max_examples=200, deadline=None)
@given(
    inst=instruments(),
    ticks=st.integers(1, 10**8),
    lots=st.integers(1, 10**8),
    rate=st.integers(-100_000, 200_000),  # -0.1% .. 0.2%
)
def test_fees_equal_decimal_arithmetic_rounded_against_us(
    inst: Instrument, ticks: int, lots: int, rate: int
) -> None:
    notional = inst.notional(ticks, lots)
    assume(notional < 2**63)
    fee = fee_for(notional, rate)
    exact = Decimal(inst.ticks_to_price(ticks)) * Decimal(inst.lots_to_qty(lots))
    exact_fee = exact * Decimal(rate) / RATE_SCALE * MONEY_SCALE  # in money units
    if rate >= 0:  # paid: rounded up, never undercharged
        assert fee == int(exact_fee.to_integral_value(rounding=ROUND_CEILING))
        assert fee >= exact_fee
    else:  # a rebate: toward zero, never overpaid
        assert fee == int(exact_fee.to_integral_value(rounding=ROUND_DOWN))
        assert exact_fee <= fee <= 0
    assert abs(fee - exact_fee) < 1


@pytest.mark.parametrize(
    ("tick", "step"),
    [("0.0001", "0.00001"), ("0.000001", "0.001"), ("0.00000001", "0.1"), ("0.0000001", "0.05")],
)
def test_instrument_finer_than_money_unit_is_refused(tick: str, step: str) -> None:
    assert Decimal(tick) * Decimal(step) * MONEY_SCALE % 1 != 0  # the premise
    with pytest.raises(InstrumentError, match="finer than 1e-8"):
        Instrument(InstrumentSpec(symbol="TINY", tick_size=tick, qty_step=step, min_qty=step))


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "", "1e"])
def test_unparseable_numbers_are_instrument_errors(bad: str) -> None:
    with pytest.raises(InstrumentError):
        Instrument(BTCUSDT).price_to_ticks(bad)


def test_btcusdt_examples_from_the_venue() -> None:
    btc = Instrument(BTCUSDT)
    assert btc.price_to_ticks("81794.8") == 817_948
    assert btc.ticks_to_price(817_948) == "81794.8"
    assert btc.qty_to_lots("0.001") == btc.min_lots == 1
    assert btc.notional(817_948, 1) == money_from_str("81.7948")
    assert btc.min_notional == 5 * MONEY_SCALE
