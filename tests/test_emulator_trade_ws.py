"""The emulator's WebSocket Trade API (/v5/trade): pybit's WebSocketTrading unchanged, the
documented frame shapes (tests/fixtures/bybit_trade_ws.json), reqId echo, and the faults."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pybit._websocket_trading as pybit_trading
import pybit.unified_trading as ut
import pytest
from websockets.asyncio.client import connect

from tests.test_emulator_rest import assert_shape
from tools.bybit_emulator import EmulatorHandle
from tools.bybit_emulator.auth import ws_signature

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "bybit_trade_ws.json").read_text())


class Replies:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, msg: dict[str, Any]) -> None:
        with self._cond:
            self.items.append(msg)
            self._cond.notify_all()

    def wait(self, n: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; got {self.items!r}")
                self._cond.wait(left)
            return list(self.items)


def _order(link: str, price: str = "60000") -> dict[str, Any]:
    return {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.001",
        "price": price,
        "timeInForce": "GTC",
        "orderLinkId": link,
    }


def test_pybit_websocket_trading_places_amends_and_cancels_against_the_emulator(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pybit_trading, "TRADE_WSS", emulator.ws_trade)
    ok, errors = Replies(), Replies()
    ws = ut.WebSocketTrading(
        testnet=False, api_key=emulator.api_key, api_secret=emulator.api_secret
    )
    try:
        ws.place_order(ok, error_callback=errors, **_order("wst-1"))
        created = ok.wait(1)[0]
        assert_shape(created, FIXTURES["create_response"])
        assert created["op"] == "order.create" and created["data"]["orderLinkId"] == "wst-1"
        ws.amend_order(ok, category="linear", symbol="BTCUSDT", orderLinkId="wst-1", price="59000")
        ws.cancel_order(ok, category="linear", symbol="BTCUSDT", orderLinkId="wst-1")
        got = ok.wait(3)
        assert [m["op"] for m in got] == ["order.create", "order.amend", "order.cancel"]
        ws.cancel_order(
            ok, error_callback=errors, category="linear", symbol="BTCUSDT", orderLinkId="wst-1"
        )
        refused = errors.wait(1)[0]
        assert_shape(refused, FIXTURES["error_response"])
        assert refused["retCode"] == 110001
        ws.place_batch_order(
            ok,
            category="linear",
            request=[
                {k: v for k, v in _order(f"wsb-{i}").items() if k != "category"} for i in range(2)
            ],
        )
        batch = ok.wait(4)[3]
        assert_shape(batch, FIXTURES["batch_create_response"])
        assert [c["code"] for c in batch["retExtInfo"]["list"]] == [0, 0]
    finally:
        ws.exit()
    orders = emulator.call(lambda st: {o["orderLinkId"]: o for o in _orders(st)})
    assert orders["wst-1"]["orderStatus"] == "Cancelled"
    assert float(orders["wst-1"]["price"]) == 59000
    assert {"wsb-0", "wsb-1"} <= set(orders)


def _orders(st: Any) -> list[dict[str, Any]]:
    from tools.bybit_emulator import queries

    result = queries.order_history(st, {"category": "linear", "symbol": "BTCUSDT", "limit": "50"})
    open_ = queries.open_orders(st, {"category": "linear", "symbol": "BTCUSDT", "limit": "50"})
    return list(result["list"]) + list(open_["list"])


async def _session(emulator: EmulatorHandle, *, auth: bool = True) -> Any:
    ws = await connect(emulator.ws_trade, proxy=None)
    if auth:
        expires = int(time.time() * 1000) + 10_000
        sig = ws_signature(emulator.api_secret, expires)
        await ws.send(json.dumps({"op": "auth", "args": [emulator.api_key, expires, sig]}))
        reply = json.loads(await ws.recv())
        assert_shape(reply, FIXTURES["auth_response"])
        assert reply["retCode"] == 0
    return ws


def _request(op: str, args: dict[str, Any], req_id: str | None = None) -> str:
    return json.dumps(
        {
            "reqId": req_id or uuid.uuid4().hex,
            "header": {"X-BAPI-TIMESTAMP": str(int(time.time() * 1000))},
            "op": op,
            "args": [args],
        }
    )


def test_req_id_echo_duplicates_auth_rate_limit_lost_reply_and_drop(
    emulator: EmulatorHandle,
) -> None:
    async def run() -> None:
        cold = await _session(emulator, auth=False)
        await cold.send(_request("order.create", _order("x-0"), "r0"))
        assert json.loads(await cold.recv())["retCode"] == 10003
        await cold.close()

        ws = await _session(emulator)
        await ws.send(json.dumps({"op": "ping"}))
        assert_shape(json.loads(await ws.recv()), FIXTURES["pong_response"])
        await ws.send(_request("order.create", _order("x-1"), "r1"))
        first = json.loads(await ws.recv())
        assert first["reqId"] == "r1" and first["retCode"] == 0
        await ws.send(_request("order.create", _order("x-2"), "r1"))
        assert json.loads(await ws.recv())["retCode"] == 20006  # reqId seen before
        emulator.set_faults(rate_limit_next=1)
        await ws.send(_request("order.create", _order("x-3"), "r3"))
        limited = json.loads(await ws.recv())
        assert limited["retCode"] == 10006 and "X-Bapi-Limit-Reset-Timestamp" in limited["header"]
        emulator.set_faults(lose_reply_next=1, lose_reply_mode="500")
        await ws.send(_request("order.create", _order("x-4"), "r4"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)  # applied, never answered
        await ws.send(_request("order.create", _order("x-4"), "r5"))
        assert json.loads(await ws.recv())["retCode"] == 110072  # it exists: never twice
        emulator.drop_ws("trade")
        with pytest.raises(Exception):  # noqa: B017 - the socket is gone, however it says so
            await asyncio.wait_for(ws.recv(), 5)

    emulator.call(lambda st: None)
    asyncio.run(run())
    orders = emulator.call(lambda st: [o["orderLinkId"] for o in _orders(st)])
    assert orders.count("x-4") == 1 and "x-2" not in orders and "x-3" not in orders
