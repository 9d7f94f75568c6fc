"""The margin model against Bybit's published formulas, with numbers worked out by hand.

* Order cost (Bybit help centre, "Order Cost"): IM + fee to open + fee to close, the fee to
  close at the bankruptcy price: buy ``price * (1 - 1/L)``, sell ``price * (1 + 1/L)``.
  Bybit's own example: 1 BTC at 50,000 USDT, 10x, taker 0.055 % ->
  5,000 + 27.5 + 24.75 = 5,052.25 USDT.
* Isolated liquidation (Bybit, "Liquidation Price, isolated"): long
  ``LP = entry - (IM - MM) / qty``, bankruptcy ``entry - IM / qty``; short mirrored.
* Cross (unified account): liquidated when equity = wallet + unrealized PnL falls to the
  maintenance margin, so long ``LP = entry - (wallet - MM) / qty``, bankruptcy
  ``entry - wallet / qty``; short mirrored.
"""

from __future__ import annotations

from adapters.sim import SimConfig, SimVenue
from adapters.sim.margin import (
    bankruptcy_at_margin,
    bankruptcy_price,
    liquidation_at_margin,
    liquidation_price,
    order_cost,
)
from engine.events import CandleClosed, Liquidated, OrderAccepted, OrderRejected, SubmitOrder
from engine.instrument import BTCUSDT, Instrument, money_from_str

BTC = Instrument(BTCUSDT)  # 0.1 USDT tick, 0.001 BTC lot
NU = BTC.notional_unit
ONE_BTC = 1000  # lots
MINUTE = 60_000


def usdt(text: str) -> int:
    return money_from_str(text)


def px(text: str) -> int:
    return BTC.price_to_ticks(text)


def test_order_cost_is_bybits_published_example():
    notional = BTC.notional(px("50000"), ONE_BTC)
    assert notional == usdt("50000")
    assert order_cost(notional, True, 10, 55_000) == usdt("5052.25")  # 5000 + 27.5 + 24.75
    # A sell's fee to close is at 50,000 * 1.1: 30.25.
    assert order_cost(notional, False, 10, 55_000) == usdt("5057.75")
    # 1x buy: bankruptcy price 0, so no fee to close: 50,000 + 27.5.
    assert order_cost(notional, True, 1, 55_000) == usdt("50027.5")


def _candle(i: int, o: str, h: str, low: str, c: str) -> CandleClosed:
    return CandleClosed(
        (i + 1) * MINUTE,
        "BTCUSDT",
        "1m",
        i * MINUTE,
        (i + 1) * MINUTE,
        px(o),
        px(h),
        px(low),
        px(c),
        100_000,
    )


def _buy_one_btc(balance: str, mode: str = "cross") -> tuple[SimVenue, list]:
    v = SimVenue(BTC, SimConfig(slippage_ticks=0, margin_mode=mode), usdt(balance))
    v.on_candle(_candle(0, "50000", "50000", "50000", "50000"))
    cmd = SubmitOrder(MINUTE, "e", "BTCUSDT", "Buy", "Market", ONE_BTC)
    return v, v.on_command(cmd)


def test_the_pre_trade_check_is_the_order_cost_to_the_cent():
    _, ok = _buy_one_btc("5052.25")
    assert isinstance(ok[0], OrderAccepted)
    _, refused = _buy_one_btc("5052.24")
    assert isinstance(refused[0], OrderRejected) and refused[0].code == 110007


def test_isolated_liquidation_and_bankruptcy_prices():
    ev = usdt("50000")  # 1 BTC at 50,000; IM 5,000 at 10x; MM 0.5 % = 250
    assert liquidation_price(ONE_BTC, ev, NU, 10, 500_000) == px("45250")  # 50000 - 4750
    assert bankruptcy_price(ONE_BTC, ev, NU, 10) == px("45000")  # 50000 - 5000
    assert liquidation_price(-ONE_BTC, ev, NU, 10, 500_000) == px("54750")
    assert bankruptcy_price(-ONE_BTC, ev, NU, 10) == px("55000")


def test_cross_liquidation_and_bankruptcy_prices():
    ev, wallet = usdt("50000"), usdt("10000")  # the whole wallet backs the position
    assert liquidation_at_margin(ONE_BTC, ev, NU, wallet, 500_000) == px("40250")
    assert bankruptcy_at_margin(ONE_BTC, ev, NU, wallet) == px("40000")
    assert liquidation_at_margin(-ONE_BTC, ev, NU, wallet, 500_000) == px("59750")
    assert bankruptcy_at_margin(-ONE_BTC, ev, NU, wallet) == px("60000")
    # A wallet larger than the position: a long cannot be liquidated at a positive price.
    assert liquidation_at_margin(ONE_BTC, ev, NU, usdt("60000"), 500_000) == 0


def test_the_same_dip_liquidates_isolated_but_not_cross_then_cross_loses_the_wallet():
    # 1 BTC long at 50,000 (no slippage) from 10,000 USDT at 10x; the taker fee to open
    # is 27.5, so the wallet is 9,972.5.
    iso, _ = _buy_one_btc("10000", "isolated")
    cross, _ = _buy_one_btc("10000", "cross")
    fill_bar = _candle(1, "50000", "50000", "50000", "50000")
    iso.on_candle(fill_bar)
    cross.on_candle(fill_bar)
    assert iso.wallet == cross.wallet == usdt("9972.5")
    assert iso.liq_price() == px("45250")
    # cross: LP = 50000 - (9972.5 - 250) = 40277.5, bankruptcy 50000 - 9972.5 = 40027.5
    assert (cross.liq_price(), cross.bankruptcy_price()) == (px("40277.5"), px("40027.5"))

    dip = _candle(2, "50000", "50000", "45000", "46000")
    (liq,) = [e for e in iso.on_candle(dip) if isinstance(e, Liquidated)]
    assert liq.price == px("45000")  # isolated: the position's 5,000 IM is gone
    assert liq.fee == usdt("24.75")  # 0.055 % of 45,000
    assert iso.wallet == usdt("9972.5") - usdt("5000") - usdt("24.75")
    assert [e for e in cross.on_candle(dip) if isinstance(e, Liquidated)] == []

    crash = _candle(3, "46000", "46000", "40000", "41000")
    (liq,) = [e for e in cross.on_candle(crash) if isinstance(e, Liquidated)]
    assert liq.price == px("40027.5")  # the loss is the whole wallet
    assert liq.fee == 0  # nothing is left to pay it from
    assert cross.wallet == 0 and cross.position.qty == 0


def test_set_margin_mode_and_leverage_move_the_liquidation_price():
    v, _ = _buy_one_btc("10000", "cross")
    v.on_candle(_candle(1, "50000", "50000", "50000", "50000"))
    v.set_margin_mode("isolated")
    assert v.liq_price() == px("45250")
    v.set_leverage(5)  # IM 10,000: LP = 50000 - (10000 - 250) = 40250
    assert v.liq_price() == px("40250")
