"""The public and private streams, through pybit's WebSocket client (threads; always
``ws.exit()``) and through the ``websockets`` library for the raw protocol details."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pybit.unified_trading as ut
import pytest
from websockets.asyncio.client import connect

from engine.instrument import BTCUSDT, Instrument
from tests.test_emulator_rest import assert_shape, client, place
from tools.bybit_emulator import EmulatorHandle
from tools.bybit_emulator.auth import ws_signature

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "bybit-samples"
INST = Instrument(BTCUSDT)


def sample(name: str) -> Any:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"Bybit sample payloads absent: {path}")
    return json.loads(path.read_text())


class Inbox:
    """Messages a pybit callback received (on pybit's thread), with a blocking wait."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, message: dict[str, Any]) -> None:
        with self._cond:
            self.items.append(message)
            self._cond.notify_all()

    def wait_for(
        self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 10
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.items):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; received {self.items!r}")
                self._cond.wait(left)
            return list(self.items)


def pybit_ws_urls(monkeypatch: pytest.MonkeyPatch, emu: EmulatorHandle) -> None:
    """Point pybit's WebSocket at the emulator (reference §6.5: patch before constructing)."""
    base = emu.rest.replace("http://", "ws://")
    monkeypatch.setattr(ut, "PUBLIC_WSS", base + "/v5/public/{CHANNEL_TYPE}")
    monkeypatch.setattr(ut, "PRIVATE_WSS", base + "/v5/private")


@contextmanager
def pybit_ws(emu: EmulatorHandle, channel: str, **kw: Any) -> Iterator[ut.WebSocket]:
    if channel == "private":
        kw.setdefault("api_key", emu.api_key)
        kw.setdefault("api_secret", emu.api_secret)
    ws = ut.WebSocket(testnet=False, channel_type=channel, **kw)
    try:
        yield ws
    finally:
        ws.exit()


def wait_subscribed(emu: EmulatorHandle, topics: set[str], timeout: float = 10) -> None:
    """Block until some connection has subscribed every topic in ``topics``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have = emu.call(lambda _: [set(c.topics) for c in emu.emulator.hub.conns])
        if any(topics <= t for t in have):
            return
        time.sleep(0.02)
    raise AssertionError(f"no connection subscribed {topics}")


def test_pybit_kline_confirm_false_then_true(
    emulator: EmulatorHandle, bybit_candles, monkeypatch: pytest.MonkeyPatch
) -> None:
    pybit_ws_urls(monkeypatch, emulator)
    inbox = Inbox()
    with pybit_ws(emulator, "linear") as ws:
        ws.kline_stream(interval=5, symbol="BTCUSDT", callback=inbox)
        wait_subscribed(emulator, {"kline.5.BTCUSDT"})
        emulator.advance(2)
        got = inbox.wait_for(lambda items: len(items) >= 4)
    assert_shape(got[0], sample("ws-public-kline.json"))
    bars = [m["data"][0] for m in got[:4]]
    assert [b["confirm"] for b in bars] == [False, True, False, True]
    assert all(m["topic"] == "kline.5.BTCUSDT" and m["type"] == "snapshot" for m in got[:4])
    for bar, candle in zip((bars[1], bars[3]), bybit_candles[100:102]):
        assert bar["start"] == candle.open_ms and bar["end"] == candle.close_ms - 1
        assert (bar["open"], bar["high"], bar["low"], bar["close"]) == tuple(
            INST.ticks_to_price(v) for v in (candle.open, candle.high, candle.low, candle.close)
        )
    for mid, final in ((bars[0], bars[1]), (bars[2], bars[3])):
        # The halfway view is the same bar, never outside its final range.
        assert mid["start"] == final["start"]
        assert (
            float(final["low"]) <= float(mid["low"]) <= float(mid["high"]) <= float(final["high"])
        )


def test_pybit_private_topics_after_a_fill(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    pybit_ws_urls(monkeypatch, emulator)
    boxes = {t: Inbox() for t in ("order", "execution", "position", "wallet")}
    http = client(emulator)
    with pybit_ws(emulator, "private") as ws:
        ws.order_stream(callback=boxes["order"])
        ws.execution_stream(callback=boxes["execution"])
        ws.position_stream(callback=boxes["position"])
        ws.wallet_stream(callback=boxes["wallet"])
        wait_subscribed(emulator, {"order", "execution", "position", "wallet"})
        created = place(http, side="Buy", orderType="Market", qty="0.02", orderLinkId="ws-1")
        boxes["order"].wait_for(
            lambda items: any(m["data"][0]["orderStatus"] == "New" for m in items)
        )
        emulator.advance(1)
        execs = boxes["execution"].wait_for(lambda items: len(items) >= 1)
        orders = boxes["order"].wait_for(
            lambda items: any(m["data"][0]["orderStatus"] == "Filled" for m in items)
        )
        positions = boxes["position"].wait_for(
            lambda items: any(m["data"][0]["size"] == "0.020" for m in items)
        )
        wallets = boxes["wallet"].wait_for(lambda items: len(items) >= 1)
    assert_shape(execs[0], sample("ws-private-execution.json"))
    assert_shape(orders[-1], sample("ws-private-order.json"))
    assert_shape(positions[-1], sample("ws-private-position.json"))
    assert_shape(wallets[-1], sample("ws-private-wallet.json"))
    order_id = created["result"]["orderId"]
    assert {m["data"][0]["orderId"] for m in execs} == {order_id}
    assert all(m["topic"] == "execution" for m in execs)
    rest_ids = {
        e["execId"]
        for e in http.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"]
    }
    assert {m["data"][0]["execId"] for m in execs} == rest_ids
    filled = next(m for m in orders if m["data"][0]["orderStatus"] == "Filled")["data"][0]
    assert (filled["orderLinkId"], filled["cumExecQty"]) == ("ws-1", "0.020")
    assert positions[-1]["data"][0]["side"] == "Buy"
    fee = sum(float(m["data"][0]["execFee"]) for m in execs)
    wallet = float(wallets[-1]["data"][0]["totalWalletBalance"])
    assert wallet == pytest.approx(10_000 - fee, abs=1e-8)


async def _raw_session(url: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send each request and collect one reply for each."""
    replies = []
    async with connect(url) as ws:
        for req in requests:
            await ws.send(json.dumps(req))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    return replies


def test_raw_public_ping_subscribe_and_unknown_topic(emulator: EmulatorHandle) -> None:
    replies = asyncio.run(
        _raw_session(
            emulator.ws_public,
            [
                {"op": "ping", "req_id": "p-1"},
                {"op": "subscribe", "req_id": "s-1", "args": ["kline.5.BTCUSDT"]},
                {"op": "subscribe", "req_id": "s-2", "args": ["dcp.future"]},
                {"op": "unsubscribe", "req_id": "s-1", "args": ["kline.5.BTCUSDT"]},
            ],
        )
    )
    pong, ack, bad, unsub = replies
    assert_shape(pong, sample("ws-pong-public-linear.json"))
    assert (pong["ret_msg"], pong["op"], pong["req_id"]) == ("pong", "ping", "p-1")
    assert_shape(ack, sample("ws-subscribe-ack-public-linear.json"))
    assert (ack["success"], ack["req_id"], ack["op"]) == (True, "s-1", "subscribe")
    assert (bad["success"], bad["req_id"]) == (False, "s-2")
    assert "dcp.future" in bad["ret_msg"]
    assert (unsub["op"], unsub["success"], unsub["req_id"]) == ("unsubscribe", True, "s-1")


def test_raw_private_auth_rules(emulator: EmulatorHandle) -> None:
    expires = emulator.server_ms() + 5000
    good = ws_signature(emulator.api_secret, expires)
    replies = asyncio.run(
        _raw_session(
            emulator.ws_private,
            [
                {"op": "subscribe", "req_id": "early", "args": ["order"]},
                {"op": "auth", "req_id": "a-1", "args": [emulator.api_key, expires, "f" * 64]},
                {
                    "op": "auth",
                    "args": [
                        emulator.api_key,
                        expires - 10_000,
                        ws_signature(emulator.api_secret, expires - 10_000),
                    ],
                },
                {"op": "auth", "req_id": "a-2", "args": [emulator.api_key, expires, good]},
                {"op": "subscribe", "req_id": "s-1", "args": ["order", "execution"]},
                {"op": "ping", "req_id": "p-1"},
            ],
        )
    )
    early, bad_sig, expired, ok, sub, pong = replies
    assert early["success"] is False  # no private subscription before auth
    assert_shape(bad_sig, sample("observed-third-party/ws-auth-failure.json"))
    assert (bad_sig["success"], bad_sig["ret_msg"]) == (False, "Params Error")
    assert expired["success"] is False
    assert_shape(ok, sample("ws-auth-success.json"))
    assert (ok["success"], ok["req_id"]) == (True, "a-2")
    assert_shape(sub, sample("ws-subscribe-ack-private.json"))
    assert (sub["success"], sub["req_id"]) == (True, "s-1")
    assert_shape(pong, sample("ws-pong-private.json"))
    assert (pong["op"], pong["req_id"]) == ("pong", "p-1")
    assert abs(int(pong["args"][0]) - emulator.server_ms()) < 5000


def test_only_subscribed_topics_are_pushed(emulator: EmulatorHandle) -> None:
    async def session() -> list[dict[str, Any]]:
        expires = emulator.server_ms() + 5000
        async with connect(emulator.ws_private) as ws:
            auth = [emulator.api_key, expires, ws_signature(emulator.api_secret, expires)]
            await ws.send(json.dumps({"op": "auth", "args": auth}))
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "req_id": "x", "args": ["wallet"]}))
            await ws.recv()
            http = client(emulator)
            await asyncio.to_thread(place, http, side="Buy", orderType="Market", qty="0.01")
            await emulator.step()
            got = [json.loads(await asyncio.wait_for(ws.recv(), 5))]
            with pytest.raises(TimeoutError):
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 0.3)))
            return got

    got = asyncio.run(session())
    assert [m["topic"] for m in got] == ["wallet"]


def test_fills_reach_the_client_before_the_closing_kline(emulator_factory) -> None:
    """Two sockets, one reader loop: the bar's execution arrives before its confirm=true kline.

    Best effort across sockets; a generous settle time keeps this test stable under load."""
    emulator = emulator_factory(fill_settle_ms=150)

    async def session() -> list[str]:
        expires = emulator.server_ms() + 5000
        arrivals: list[str] = []
        async with connect(emulator.ws_private) as prv, connect(emulator.ws_public) as pub:
            auth = [emulator.api_key, expires, ws_signature(emulator.api_secret, expires)]
            await prv.send(json.dumps({"op": "auth", "args": auth}))
            await prv.recv()
            await prv.send(json.dumps({"op": "subscribe", "args": ["execution"]}))
            await prv.recv()
            await pub.send(json.dumps({"op": "subscribe", "args": ["kline.5.BTCUSDT"]}))
            await pub.recv()
            http = client(emulator)
            for _ in range(5):
                await asyncio.to_thread(place, http, side="Buy", orderType="Market", qty="0.01")
                step = asyncio.create_task(emulator.step())
                done = False
                while not done:
                    recv_prv = asyncio.create_task(prv.recv())
                    recv_pub = asyncio.create_task(pub.recv())
                    finished, pending = await asyncio.wait(
                        {recv_prv, recv_pub}, timeout=5, return_when=asyncio.FIRST_COMPLETED
                    )
                    for t in pending:
                        t.cancel()
                    assert finished, "nothing arrived"
                    for t in finished:
                        msg = json.loads(t.result())
                        if msg["topic"] == "execution":
                            arrivals.append("fill")
                        elif msg["data"][0]["confirm"]:
                            arrivals.append("close")
                            done = True
                await step
        return arrivals

    arrivals = asyncio.run(session())
    assert arrivals == ["fill", "close"] * 5


def test_longer_kline_interval_is_rolled_up_live(emulator: EmulatorHandle, bybit_candles) -> None:
    """kline.15 from a 5-minute file: updates every bar, confirmed when the 15 minutes end."""

    async def session() -> list[dict[str, Any]]:
        async with connect(emulator.ws_public) as ws:
            await ws.send(json.dumps({"op": "subscribe", "args": ["kline.15.BTCUSDT"]}))
            await ws.recv()
            await emulator.step(6)
            return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(12)]

    got = [m["data"][0] for m in asyncio.run(session())]
    bars = bybit_candles[100:106]
    quarter = 900_000
    assert [b["confirm"] for b in got] == [
        final and c.close_ms % quarter == 0 for c in bars for final in (False, True)
    ]
    for b, c in zip(got[1::2], bars):
        first = c.open_ms - c.open_ms % quarter
        so_far = [x for x in bybit_candles[:106] if first <= x.open_ms <= c.open_ms]
        assert b["start"] == first and b["interval"] == "15"
        assert b["open"] == INST.ticks_to_price(so_far[0].open)
        assert b["close"] == INST.ticks_to_price(c.close)
        assert b["high"] == INST.ticks_to_price(max(x.high for x in so_far))
        assert b["low"] == INST.ticks_to_price(min(x.low for x in so_far))
