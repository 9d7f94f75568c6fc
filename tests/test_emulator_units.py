"""The emulator's small parts on their own: candle files, number formatting, fault settings,
and order rules that need no network (through ``EmulatorState`` with a real ``SimVenue``)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from adapters.sim.config import SimConfig
from adapters.sim.venue import SimVenue
from engine.instrument import BTCUSDT, Instrument, money_from_str
from tests.test_emulator_rest import client
from tools.bybit_emulator import EmulatorHandle
from tools.bybit_emulator.auth import ws_signature
from tools.bybit_emulator.candles import CandleFileError, interval_of, load_candle_file
from tools.bybit_emulator.errors import ApiError
from tools.bybit_emulator.faults import FaultError, Faults
from tools.bybit_emulator.state import EmulatorState
from tools.bybit_emulator.wire import money_str, partial_bar, ratio_price

INST = Instrument(BTCUSDT)


def test_candle_file_reader(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2025-04-03 17:05:00+00:00,10,11,9.5,10.1,2.004\n"
        "2025-04-03 17:10:00+00:00,10.1,12,9,11,1.5\n"
    )
    bars = load_candle_file(f, INST)
    assert [b.open_ms for b in bars] == [1743699900000, 1743700200000]
    assert bars[0].close_ms - bars[0].open_ms == 300_000 and bars[0].timeframe == "5m"
    assert bars[0].ts == bars[0].close_ms
    assert (bars[0].open, bars[0].close, bars[0].volume) == (100, 101, 2004)
    assert interval_of(bars[0]) == "5"
    two_min = tmp_path / "two.csv"
    two_min.write_text("timestamp,open,high,low,close,volume\n0,1,1,1,1,1\n120000,1,1,1,1,1\n")
    with pytest.raises(CandleFileError, match=r"two\.csv"):
        load_candle_file(two_min, INST)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**15), 10**15))
def test_money_strings_round_trip(money: int) -> None:
    text = money_str(money)
    assert money_from_str(text) == money
    assert "e" not in text.lower()


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10**7), st.integers(1, 10**6))
def test_average_price_of_one_fill_is_its_price(ticks: int, lots: int) -> None:
    assert Decimal(ratio_price(INST, INST.notional(ticks, lots), lots)) == Decimal(
        INST.ticks_to_price(ticks)
    )


def test_partial_bar_stays_inside_the_bar(bybit_candles) -> None:
    for c in bybit_candles[:300]:
        mid = partial_bar(c)
        assert c.low <= mid.low <= mid.high <= c.high
        assert mid.open == c.open and mid.open_ms == c.open_ms
        assert c.open_ms < mid.ts < c.close_ms


def test_fault_settings_are_validated() -> None:
    f = Faults()
    f.update({"lose_reply_next": 2, "lose_reply_mode": "500"})
    assert (f.take("lose_reply_next"), f.take("lose_reply_next"), f.take("lose_reply_next")) == (
        True,
        True,
        False,
    )
    for bad in (
        {"nope": 1},
        {"lose_reply_mode": "maybe"},
        {"reject_rate": 2.0},
        {"private_delay_ms": "x"},
    ):
        with pytest.raises(FaultError):
            f.update(bad)
    f.update({"clock_skew_ms": 5})
    f.reset()
    assert f.as_dict() == Faults().as_dict()


def fresh_state(bybit_candles) -> EmulatorState:
    venue = SimVenue(INST, SimConfig(), 10_000 * 10**8, id_prefix="u")
    st_ = EmulatorState(INST, SimConfig(), venue, bybit_candles, Faults())
    for _ in range(20):
        st_.play_next()
    return st_


def test_amend_and_cancel_of_a_filled_order_are_refused(bybit_candles) -> None:
    st_ = fresh_state(bybit_candles)
    base = {"category": "linear", "symbol": "BTCUSDT"}
    st_.create({**base, "side": "Buy", "orderType": "Market", "qty": "0.01", "orderLinkId": "f"})
    st_.play_next()
    assert st_.by_client["f"].status == "Filled"
    with pytest.raises(ApiError) as err:
        st_.amend({**base, "orderLinkId": "f", "qty": "0.02"})
    assert err.value.code == 110001
    with pytest.raises(ApiError) as err:
        st_.cancel({**base, "orderLinkId": "f"})
    assert err.value.code == 110001
    with pytest.raises(ApiError) as err:
        st_.create({**base, "side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "9e9"})
    assert err.value.code == 110003


def test_reduce_only_is_trimmed_and_cancelled_when_the_position_goes(bybit_candles) -> None:
    st_ = fresh_state(bybit_candles)
    base = {"category": "linear", "symbol": "BTCUSDT"}
    st_.create({**base, "side": "Buy", "orderType": "Market", "qty": "0.01"})
    st_.play_next()
    far = INST.ticks_to_price(st_.last_price * 2)
    _, msgs = st_.create(
        {
            **base,
            "side": "Sell",
            "orderType": "Limit",
            "qty": "0.05",
            "price": far,
            "reduceOnly": True,
            "orderLinkId": "tp",
        }
    )
    assert st_.by_client["tp"].qty == 10  # trimmed to the 0.01 position
    assert [t for t, _ in msgs] == ["order", "order", "position"]  # accepted, then trimmed
    assert msgs[1][1]["qty"] == "0.010"
    st_.create({**base, "side": "Sell", "orderType": "Market", "qty": "0.01"})
    msgs = st_.play_next()[1]
    rec = st_.by_client["tp"]
    assert (rec.status, rec.cancel_type) == ("Cancelled", "CancelByReduceOnly")
    assert ("order", rec.order_id) in [(t, m.get("orderId")) for t, m in msgs]


def test_categorised_private_topics(emulator: EmulatorHandle) -> None:
    async def run() -> list[str]:
        expires = emulator.server_ms() + 5000
        async with connect(emulator.ws_private) as ws:
            auth = [emulator.api_key, expires, ws_signature(emulator.api_secret, expires)]
            await ws.send(json.dumps({"op": "auth", "args": auth}))
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "args": ["order.linear"]}))
            await ws.recv()
            body = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy"}
            body.update(orderType="Limit", qty="0.01", price="50000")
            await asyncio.to_thread(client(emulator).place_order, **body)
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return [msg["topic"]]

    assert asyncio.run(run()) == ["order.linear"]


def test_funding_and_liquidation_become_executions(bybit_candles) -> None:
    sim = SimConfig(funding_rate_e8=10_000, leverage=100, margin_mode="isolated")
    venue = SimVenue(INST, sim, 10_000 * 10**8, id_prefix="u")
    st_ = EmulatorState(INST, sim, venue, bybit_candles, Faults())
    st_.play_next()
    base = {"category": "linear", "symbol": "BTCUSDT"}
    st_.create({**base, "side": "Buy", "orderType": "Market", "qty": "1", "orderLinkId": "big"})
    msgs = []
    while not venue.liquidations() and not st_.exhausted:
        msgs.extend(st_.play_next()[1])
    (liq,) = venue.liquidations()
    fundings = venue.fundings()
    assert fundings, "the position should have lived through a funding time"
    by_type: dict[str, list] = {}
    for e in st_.executions:
        by_type.setdefault(e.exec_type, []).append(e)
    assert [(e.exec_id, e.fee) for e in by_type["Funding"]] == [
        (f.exec_id, f.amount) for f in fundings
    ]
    (bust,) = by_type["BustTrade"]
    assert (bust.exec_id, bust.side, bust.price, bust.qty) == (
        liq.exec_id,
        liq.side,
        liq.price,
        liq.qty,
    )
    pushed = [m["execType"] for t, m in msgs if t == "execution"]
    assert pushed.count("Funding") == len(fundings) and pushed.count("BustTrade") == 1
    assert st_.position_view().qty == 0
    wallet = st_.wallet()
    assert money_from_str(wallet["totalWalletBalance"]) == venue.wallet
