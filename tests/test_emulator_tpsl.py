"""Take-profit / stop-loss attached to an order, and ``/v5/position/trading-stop``, in the
emulator, driven by pybit unchanged; fills match a backtest of the same candles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError

from adapters.sim.config import SimConfig
from adapters.sim.venue import SimVenue
from engine.events import CandleClosed, SubmitOrder
from engine.instrument import BTCUSDT, Instrument
from tests.test_emulator_rest import client
from tools.bybit_emulator import EmulatorConfig, EmulatorHandle

INST = Instrument(BTCUSDT)
HISTORY = 50
WIDTH = 1_500  # ticks (150 USDT) between the entry's reference price and its levels


def _levels(last: int) -> tuple[int, int]:
    return last + WIDTH, last - WIDTH  # (take profit, stop loss) of a long


def _all_executions(http: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = ""
    while True:
        kw: dict[str, Any] = {"category": "linear", "symbol": "BTCUSDT", "limit": 100}
        if cursor:
            kw["cursor"] = cursor
        page = http.get_executions(**kw)["result"]
        rows.extend(page["list"])
        cursor = page["nextPageCursor"]
        if not cursor:
            return sorted(rows, key=lambda r: r["seq"])


def _backtest(candles: Sequence[CandleClosed], bars: int) -> list[tuple[str, int, int]]:
    venue = SimVenue(INST, SimConfig(), EmulatorConfig().balance, id_prefix="bt")
    for c in candles[:HISTORY]:
        venue.on_candle(c)
    tp, sl = _levels(candles[HISTORY - 1].close)
    cmd = SubmitOrder(
        ts=candles[HISTORY - 1].close_ms, client_id="tpsl-1", symbol="BTCUSDT", side="Buy",
        order_type="Market", qty=10, take_profit=tp, stop_loss=sl,
    )  # fmt: skip
    venue.on_command(cmd)
    for c in candles[HISTORY : HISTORY + bars]:
        venue.on_candle(c)
    return [(f.client_id, f.price, f.qty) for f in venue.executions()]


def _enter(http: Any, last: int, link: str = "tpsl-1") -> None:
    tp, sl = _levels(last)
    http.place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010",
        orderLinkId=link, takeProfit=INST.ticks_to_price(tp), stopLoss=INST.ticks_to_price(sl),
        tpslMode="Full", tpTriggerBy="LastPrice", slTriggerBy="LastPrice",
    )  # fmt: skip


def test_attached_tpsl_is_armed_at_the_fill_and_fills_as_the_backtest(
    bybit_candles: Sequence[CandleClosed],
) -> None:
    bars = 400
    expected = _backtest(bybit_candles, bars)
    assert len(expected) == 2 and expected[1][0] in ("tpsl-1-sl", "tpsl-1-tp")
    with EmulatorHandle.start(bybit_candles, EmulatorConfig(history=HISTORY)) as emu:
        http = client(emu)
        _enter(http, bybit_candles[HISTORY - 1].close)
        emu.advance(1)  # the entry fills at this bar's open and arms both levels
        opened = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
        armed = {o["stopOrderType"]: o for o in opened}
        if expected[1][0] != "tpsl-1-sl" or len(opened) == 2:  # not stopped in bar 1
            assert set(armed) == {"StopLoss", "TakeProfit"}
            sl = armed["StopLoss"]
            assert (sl["orderLinkId"], sl["parentOrderLinkId"]) == ("tpsl-1-sl", "tpsl-1")
            assert (sl["orderStatus"], sl["side"], sl["reduceOnly"]) == (
                "Untriggered",
                "Sell",
                True,
            )
            assert (sl["createType"], sl["tpslMode"]) == ("CreateByStopLoss", "Full")
        hist = http.get_order_history(category="linear", symbol="BTCUSDT", orderLinkId="tpsl-1")
        entry = hist["result"]["list"][0]
        tp, slp = _levels(bybit_candles[HISTORY - 1].close)
        assert (entry["takeProfit"], entry["stopLoss"]) == (
            INST.ticks_to_price(tp),
            INST.ticks_to_price(slp),
        )
        assert entry["tpTriggerBy"] == entry["slTriggerBy"] == "LastPrice"
        emu.advance(bars - 1)
        got = [
            (r["orderLinkId"], INST.price_to_ticks(r["execPrice"]), INST.qty_to_lots(r["execQty"]))
            for r in _all_executions(http)
        ]
    assert got == expected


def test_trading_stop_moves_removes_and_refuses_as_bybit(
    bybit_candles: Sequence[CandleClosed],
) -> None:
    with EmulatorHandle.start(bybit_candles, EmulatorConfig(history=HISTORY)) as emu:
        http = client(emu)
        base = {"category": "linear", "symbol": "BTCUSDT", "positionIdx": 0, "tpslMode": "Full"}
        with pytest.raises(InvalidRequestError) as err:  # flat: nothing to protect
            http.set_trading_stop(**base, stopLoss="50000")
        assert err.value.status_code == 10001
        _enter(http, bybit_candles[HISTORY - 1].close)
        emu.advance(1)
        last = emu.call(lambda s: s.last_price)
        pos = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        assert pos["side"] == "Buy"
        new_sl = INST.ticks_to_price(last - 500)
        http.set_trading_stop(**base, stopLoss=new_sl, slTriggerBy="LastPrice")
        opened = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
        (sl,) = [o for o in opened if o["stopOrderType"] == "StopLoss"]
        assert (sl["triggerPrice"], sl["orderLinkId"]) == (new_sl, "tpsl-1-sl")
        with pytest.raises(InvalidRequestError) as err:  # the same level again
            http.set_trading_stop(**base, stopLoss=new_sl)
        assert err.value.status_code == 34040
        with pytest.raises(InvalidRequestError) as err:  # a long's stop above the price
            http.set_trading_stop(**base, stopLoss=INST.ticks_to_price(last + 100))
        assert err.value.status_code == 10001
        http.set_trading_stop(**base, takeProfit="0")  # removed
        opened = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
        assert [o["stopOrderType"] for o in opened] == ["StopLoss"]
        http.set_trading_stop(**base, takeProfit=INST.ticks_to_price(last + 800))  # new one
        opened = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
        assert sorted(o["stopOrderType"] for o in opened) == ["StopLoss", "TakeProfit"]


def test_unsupported_tpsl_forms_are_refused_with_10001(
    bybit_candles: Sequence[CandleClosed],
) -> None:
    with EmulatorHandle.start(bybit_candles, EmulatorConfig(history=HISTORY)) as emu:
        http = client(emu)
        last = bybit_candles[HISTORY - 1].close
        order = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market"}
        order["qty"] = "0.010"
        sl = INST.ticks_to_price(last - WIDTH)
        for extra in (
            {"stopLoss": sl, "tpslMode": "Partial"},
            {"stopLoss": sl, "slTriggerBy": "MarkPrice"},
            {"stopLoss": sl, "reduceOnly": True},
            {"stopLoss": INST.ticks_to_price(last + WIDTH)},  # a buy's stop above the price
        ):
            with pytest.raises(InvalidRequestError) as err:
                http.place_order(**order, **extra)
            assert err.value.status_code == 10001, extra
        assert http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []
