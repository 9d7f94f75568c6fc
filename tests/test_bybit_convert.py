"""Bybit v5 payloads -> engine events: every sample in shared/reference/bybit-samples.

Expected numbers are computed here with Decimal arithmetic from the sample's own strings
(value / step must be a whole number), never copied from the converter's output.
"""

from __future__ import annotations

import copy
import json
import logging
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.bybit.convert import (
    StreamConverter,
    balance_snapshots,
    candles_from_rest_kline,
    execution_event,
    instrument_spec,
    open_order,
    position_snapshot,
)
from engine.events import (
    BalanceSnapshot,
    CandleClosed,
    Fill,
    FundingPaid,
    InstrumentSpec,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    PositionSnapshot,
)
from engine.instrument import Instrument

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "bybit-samples"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"samples absent: {SAMPLES}")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def steps(value: str, step: str) -> int:
    """value / step, which must be whole: the exact fixed-point number."""
    q = Decimal(value) / Decimal(step)
    assert q == q.to_integral_value(), f"{value} is not on the {step} grid"
    return int(q)


def money(value: str, rounding: str | None = None) -> int:
    q = Decimal(value) * 10**8
    if rounding is None:
        assert q == q.to_integral_value()
        return int(q)
    return int(q.to_integral_value(rounding=rounding))


def spec(symbol: str, tick: str, step: str) -> InstrumentSpec:
    return InstrumentSpec(symbol=symbol, tick_size=tick, qty_step=step, min_qty=step)


BTC_ROW = sample("rest-market-instruments-info-linear.json")["result"]["list"][0]
BTC = Instrument(instrument_spec(BTC_ROW))
ETHPERP = Instrument(spec("ETHPERP", "0.05", "0.01"))
ETHUSDT = Instrument(spec("ETHUSDT", "0.01", "0.01"))
OPTION = Instrument(spec("ETH-30DEC22-1400-C", "0.1", "1"))
BTCUSD = Instrument(spec("BTCUSD", "0.5", "1"))
ALL = {i.symbol: i for i in (BTC, ETHPERP, ETHUSDT, OPTION, BTCUSD)}


def conv() -> StreamConverter:
    return StreamConverter(dict(ALL), dedupe_size=64)


def test_instruments_info_rows_become_specs() -> None:
    s = BTC.spec
    assert (s.symbol, s.tick_size, s.qty_step) == (
        BTC_ROW["symbol"],
        BTC_ROW["priceFilter"]["tickSize"],
        BTC_ROW["lotSizeFilter"]["qtyStep"],
    )
    assert s.min_qty == BTC_ROW["lotSizeFilter"]["minOrderQty"]
    assert s.min_notional == BTC_ROW["lotSizeFilter"]["minNotionalValue"]
    assert s.max_qty == BTC_ROW["lotSizeFilter"]["maxOrderQty"]
    assert s.max_leverage == BTC_ROW["leverageFilter"]["maxLeverage"]
    pre = sample("rest-market-instruments-info-linear-prelisting.json")["result"]["list"][0]
    pspec = instrument_spec(pre)
    assert pspec.tick_size == pre["priceFilter"]["tickSize"]
    Instrument(pspec)  # usable: the notional unit is a whole number of money units


def test_kline_only_confirmed_bars_close_and_only_once() -> None:
    msg = sample("ws-public-kline.json")
    c = StreamConverter({"BTCUSDT": BTC})
    assert c.handle(msg) == []  # confirm=false: still open
    closed = copy.deepcopy(msg)
    closed["data"][0]["confirm"] = True
    item = closed["data"][0]
    (candle,) = c.handle(closed)
    assert isinstance(candle, CandleClosed)
    assert candle.open_ms == item["start"]
    assert candle.close_ms == candle.ts == item["start"] + 5 * 60_000 == item["end"] + 1
    assert candle.timeframe == "5m"
    assert candle.open == steps(item["open"], BTC.spec.tick_size)
    assert candle.high == steps(item["high"], BTC.spec.tick_size)
    assert candle.low == steps(item["low"], BTC.spec.tick_size)
    assert candle.close == steps(item["close"], BTC.spec.tick_size)
    assert candle.volume == steps(item["volume"], BTC.spec.qty_step)
    assert candle.turnover == money(item["turnover"])
    assert c.handle(closed) == []  # a repeat (e.g. after a reconnect) is not a second bar


def test_rest_kline_is_reversed_to_oldest_first() -> None:
    result = sample("rest-market-kline.json")["result"]
    result["interval"] = "60"
    candles = candles_from_rest_kline(BTCUSD, result)
    rows = result["list"]
    assert [c.open_ms for c in candles] == sorted(int(r[0]) for r in rows)
    last = candles[-1]
    assert last.close == steps(rows[0][4], "0.5")
    assert last.volume == int(rows[0][5])
    assert last.turnover == money(rows[0][6])
    assert all(c.backfill and c.close_ms - c.open_ms == 3_600_000 for c in candles)


def test_ws_execution_becomes_one_fill_once() -> None:
    msg = sample("ws-private-execution.json")
    item = msg["data"][0]
    c = conv()
    (fill,) = c.handle(msg)  # no orderLinkId: not ours, so no synthesised acceptance
    assert isinstance(fill, Fill)
    assert fill.exec_id == item["execId"] and fill.venue_id == item["orderId"]
    assert fill.side == "Sell" and fill.symbol == "BTCUSDT"
    assert fill.price == steps(item["execPrice"], BTC.spec.tick_size)
    assert fill.qty == steps(item["execQty"], BTC.spec.qty_step)
    assert fill.fee == money(item["execFee"])
    assert fill.ts == int(item["execTime"])
    assert fill.is_maker is False and fill.exec_type == "Trade"
    assert c.handle(msg) == [] and c.duplicates == 1


def test_rest_execution_row_converts_with_its_instrument() -> None:
    row = sample("rest-execution-list.json")["result"]["list"][0]
    fill = execution_event(ETHPERP, row)
    assert isinstance(fill, Fill)
    assert fill.price == steps(row["execPrice"], "0.05")
    assert fill.qty == steps(row["execQty"], "0.01")
    assert fill.fee == money(row["execFee"])
    # the notional the engine computes equals Bybit's execValue exactly
    assert ETHPERP.notional(fill.price, fill.qty) == money(row["execValue"])


def test_fill_of_an_unannounced_order_is_preceded_by_its_acceptance() -> None:
    msg = sample("ws-private-execution.json")
    msg["data"][0]["orderLinkId"] = "c-1"
    evs = conv().handle(msg)
    assert [type(e) for e in evs] == [OrderAccepted, Fill]
    acc = evs[0]
    assert isinstance(acc, OrderAccepted)
    assert (acc.client_id, acc.venue_id, acc.status) == ("c-1", msg["data"][0]["orderId"], "New")


def order_msg(**changes: Any) -> dict[str, Any]:
    row = copy.deepcopy(sample("rest-order-realtime.json")["result"]["list"][0])
    row.update(changes)
    return {"topic": "order", "creationTime": 1, "data": [row]}


def test_order_lifecycle_new_amend_cancel_each_once() -> None:
    c = conv()
    new = order_msg()
    row = new["data"][0]
    (acc,) = c.handle(new)
    assert acc == OrderAccepted(
        ts=int(row["updatedTime"]), client_id="test-000005", venue_id=row["orderId"], status="New"
    )
    assert c.handle(new) == []  # the same status again announces nothing
    (amd,) = c.handle(order_msg(price="1601.50"))
    assert isinstance(amd, OrderAmended)
    assert (amd.price, amd.qty, amd.trigger_price) == (steps("1601.50", "0.01"), 0, 0)
    (cxl,) = c.handle(
        order_msg(price="1601.50", orderStatus="Cancelled", cancelType="CancelByUser")
    )
    assert isinstance(cxl, OrderCancelled) and cxl.reason == "CancelByUser"
    assert c.handle(order_msg(orderStatus="Filled")) == []  # after the end: nothing


def test_rest_order_snapshot_row_is_exact() -> None:
    row = sample("rest-order-realtime.json")["result"]["list"][0]
    o = open_order(ETHUSDT, row)
    assert (o.client_id, o.status, o.side, o.order_type) == ("test-000005", "New", "Buy", "Limit")
    assert o.price == steps(row["price"], "0.01") and o.qty == steps(row["qty"], "0.01")
    assert o.filled_qty == 0 and o.trigger_price == 0


def test_post_only_cancel_before_acceptance_is_a_rejection_with_bybit_reason() -> None:
    row = sample("rest-order-history.json")["result"]["list"][0]
    msg = {"topic": "order", "data": [row]}
    (ev,) = conv().handle(msg)
    assert isinstance(ev, OrderRejected)
    assert ev.client_id == row["orderLinkId"] and ev.reason == "EC_PostOnlyWillTakeLiquidity"


def test_ws_order_sample_filled_is_accepted_then_closed() -> None:
    msg = sample("ws-private-order.json")
    assert conv().handle(msg) == []  # no orderLinkId: not ours
    msg["data"][0]["orderLinkId"] = "opt-1"
    c = conv()
    (acc,) = c.handle(msg)
    assert isinstance(acc, OrderAccepted) and acc.status == "New"
    msg["data"][0]["orderStatus"] = "Cancelled"
    assert c.handle(msg) == []  # already ended by Filled


def test_conditional_order_accepts_untriggered_then_triggers() -> None:
    c = conv()
    (acc,) = c.handle(order_msg(orderStatus="Untriggered", triggerPrice="1700.00"))
    assert isinstance(acc, OrderAccepted) and acc.status == "Untriggered"
    (trg,) = c.handle(order_msg(orderStatus="New", triggerPrice="1700.00"))
    assert isinstance(trg, OrderTriggered)


def test_untriggered_cancel_keeps_cancel_type() -> None:
    c = conv()
    c.handle(order_msg(orderStatus="Untriggered", triggerPrice="1700.00"))
    (end,) = c.handle(
        order_msg(orderStatus="Deactivated", triggerPrice="1700.00", cancelType="CancelByUser")
    )
    assert isinstance(end, OrderCancelled) and end.reason == "CancelByUser"


def test_ioc_remainder_expires() -> None:
    c = conv()
    c.handle(order_msg(timeInForce="IOC"))
    (end,) = c.handle(
        order_msg(
            timeInForce="IOC", orderStatus="Cancelled", rejectReason="EC_NoImmediateQtyToFill"
        )
    )
    assert isinstance(end, OrderExpired) and end.reason == "EC_NoImmediateQtyToFill"


def exec_msg(link: str, exec_id: str, qty: str, **more: Any) -> dict[str, Any]:
    row = copy.deepcopy(sample("ws-private-execution.json")["data"][0])
    order_id = sample("rest-order-realtime.json")["result"]["list"][0]["orderId"]
    row.update(symbol="ETHUSDT", orderLinkId=link, orderId=order_id, execId=exec_id)
    row.update(execQty=qty, execPrice="1600.00", execFee="0.01")
    row.update(more)
    return {"topic": "execution", "data": [row]}


def test_cancel_that_overtakes_its_fill_is_held_until_the_fill() -> None:
    c = conv()
    c.handle(order_msg())
    held = c.handle(
        order_msg(orderStatus="Cancelled", cancelType="CancelByUser", cumExecQty="0.05")
    )
    assert held == []
    evs = c.handle(exec_msg("test-000005", "e-1", "0.05"))
    assert [type(e) for e in evs] == [Fill, OrderCancelled]


def test_release_held_flushes_terminal_events() -> None:
    c = conv()
    c.handle(order_msg())
    c.handle(order_msg(orderStatus="Cancelled", cancelType="CancelByUser", cumExecQty="0.05"))
    (ev,) = c.release_held()
    assert isinstance(ev, OrderCancelled)
    assert c.release_held() == []


def test_funding_and_liquidation_executions() -> None:
    funding = exec_msg(
        "", "f-1", "0.1", execType="Funding", execFee="-0.123456789", feeRate="0.0001"
    )
    (ev,) = conv().handle(funding)
    assert isinstance(ev, FundingPaid)
    # received (negative) funding with 9 decimals rounds towards +inf: -12345678
    assert ev.amount == money("-0.123456789", ROUND_CEILING) == -12345678
    assert ev.rate_e8 == 10_000
    bust = exec_msg("", "b-1", "0.10", execType="BustTrade", side="Buy")
    (liq,) = conv().handle(bust)
    assert isinstance(liq, Liquidated)
    assert (liq.side, liq.qty, liq.price) == ("Buy", 10, 160000)


def test_positions_ws_and_rest() -> None:
    msg = sample("ws-private-position.json")
    c = StreamConverter({"BTCUSDT": BTC})
    (pos,) = c.handle(msg)
    assert isinstance(pos, PositionSnapshot)
    assert (pos.qty, pos.entry_value, pos.leverage) == (0, 0, "10")
    assert c.handle(msg) == []  # unchanged position: Bybit resends on every order change
    row = sample("rest-position-list.json")["result"]["list"][0]
    snap = position_snapshot(BTCUSD, row, 0)
    assert snap.qty == -int(row["size"])  # Sell = short
    assert snap.entry_value == money(
        str(Decimal(row["avgPrice"]) * Decimal(row["size"])), ROUND_HALF_EVEN
    )
    assert snap.ts == int(row["updatedTime"])


def test_wallet_ws_and_rest() -> None:
    msg = sample("ws-private-wallet.json")
    c = conv()
    (bal,) = c.handle(msg)
    coin = msg["data"][0]["coin"][0]
    assert isinstance(bal, BalanceSnapshot)
    assert bal.coin == "BTC" and bal.wallet == money(coin["walletBalance"])
    assert bal.available == bal.wallet  # locked/IM are "" or 0
    assert c.handle(msg) == []
    acct = sample("rest-account-wallet-balance.json")["result"]["list"][0]
    (rest,) = balance_snapshots(acct, 5)
    assert rest == BalanceSnapshot(ts=5, coin="BTC", wallet=0, available=0)


def test_unknown_fields_and_topics_are_ignored() -> None:
    msg = sample("ws-private-execution.json")
    plain = conv().handle(msg)
    noisy = copy.deepcopy(msg)
    noisy["brandNewEnvelopeField"] = {"x": 1}
    noisy["data"][0]["newFieldFrom2027"] = [1, 2, 3]
    noisy["data"][0]["extraFees"] = "surprise"
    assert conv().handle(noisy) == plain
    assert conv().handle({"topic": "greeks", "data": [{"x": "1"}]}) == []
    assert conv().handle({"topic": "tickers.BTCUSDT", "type": "delta", "data": {}}) == []
    assert conv().handle({"op": "pong"}) == []


def test_malformed_items_are_skipped_and_the_rest_converted(caplog: Any) -> None:
    good = sample("ws-private-execution.json")["data"][0]
    no_id = dict(good, execId="")
    bad_price = dict(good, execId="x-2", execPrice="abc")
    off_grid = dict(good, execId="x-3", execPrice="95900.15")
    not_obj = "garbage"
    c = conv()
    with caplog.at_level(logging.WARNING, logger="adapters.bybit.convert"):
        evs = c.handle({"topic": "execution", "data": [no_id, bad_price, not_obj, off_grid, good]})
    assert [e.exec_id for e in evs if isinstance(e, Fill)] == [good["execId"]]
    assert c.skipped == 4
    assert "skipped malformed" in caplog.text
    assert c.handle({"topic": "execution", "data": 17}) == [] and c.skipped == 5
    # a skipped execution was not marked seen: a corrected resend still converts
    fixed = dict(good, execId="x-3", execPrice="95900.1")
    assert len(c.handle({"topic": "execution", "data": [fixed]})) == 1


def test_dedupe_memory_is_bounded() -> None:
    c = StreamConverter(dict(ALL), dedupe_size=8)
    for i in range(50):
        c.handle(exec_msg("", f"e-{i}", "0.01"))
    assert len(c._execs) == 8
    assert c.handle(exec_msg("", "e-49", "0.01")) == []  # recent ids still recognised


@settings(max_examples=150, deadline=None)
@given(
    price_ticks=st.integers(1, 10**9),
    lots=st.integers(1, 10**7),
    fee=st.decimals(min_value=-1000, max_value=1000, places=8, allow_nan=False),
)
def test_any_on_grid_execution_is_exact(price_ticks: int, lots: int, fee: Decimal) -> None:
    price = BTC.ticks_to_price(price_ticks)
    qty = BTC.lots_to_qty(lots)
    row = dict(sample("ws-private-execution.json")["data"][0], execPrice=price, execQty=qty)
    row["execFee"] = f"{fee:f}"
    ev = execution_event(BTC, row)
    assert isinstance(ev, Fill)
    assert ev.price == steps(price, BTC.spec.tick_size)
    assert ev.qty == steps(qty, BTC.spec.qty_step)
    assert ev.fee == money(f"{fee:f}")
