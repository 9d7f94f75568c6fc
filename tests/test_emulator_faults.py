"""Every fault switch, each observed from the client's side of a real socket."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.test_emulator_rest import client, place
from tests.test_emulator_ws import Inbox, pybit_ws, pybit_ws_urls, wait_subscribed
from tools.bybit_emulator import EmulatorHandle
from tools.bybit_emulator.auth import rest_signature, ws_signature

PRIVATE = ["order", "execution", "position", "wallet"]


async def private_stream(emu: EmulatorHandle, topics: list[str]) -> ClientConnection:
    ws = await connect(emu.ws_private)
    expires = emu.server_ms() + 5000
    auth = [emu.api_key, expires, ws_signature(emu.api_secret, expires)]
    await ws.send(json.dumps({"op": "auth", "args": auth}))
    assert json.loads(await ws.recv())["success"] is True
    await ws.send(json.dumps({"op": "subscribe", "req_id": "s", "args": topics}))
    assert json.loads(await ws.recv())["success"] is True
    return ws


async def public_stream(emu: EmulatorHandle) -> ClientConnection:
    ws = await connect(emu.ws_public)
    await ws.send(json.dumps({"op": "subscribe", "req_id": "k", "args": ["kline.5.BTCUSDT"]}))
    assert json.loads(await ws.recv())["success"] is True
    return ws


async def drain(ws: ClientConnection, quiet: float = 0.4) -> list[dict[str, Any]]:
    """Everything that arrives until the stream is quiet for ``quiet`` s (or closes)."""
    got = []
    try:
        while True:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), quiet)))
    except (TimeoutError, ConnectionClosed):
        return got


async def fill_one(emu: EmulatorHandle, **order: Any) -> None:
    """Place a market order over REST (off the loop) and play the candle that fills it."""
    http = client(emu)
    kw = {"side": "Buy", "orderType": "Market", "qty": "0.01", **order}
    await asyncio.to_thread(place, http, **kw)
    await emu.step()


def test_drop_public_after_n_data_messages(emulator: EmulatorHandle) -> None:
    async def run() -> tuple[list[dict[str, Any]], int | None]:
        ws = await public_stream(emulator)
        emulator.set_faults(ws_drop_after_public=3)
        await emulator.step(3)  # 6 kline pushes would follow; the 3rd is the last
        got = await drain(ws)
        await ws.wait_closed()
        return got, ws.close_code

    got, close_code = asyncio.run(run())
    assert [m["data"][0]["confirm"] for m in got] == [False, True, False]
    assert close_code == 1001
    assert emulator.set_faults()["ws_drop_after_public"] == 0  # it switched itself off


def test_drop_now_abort_mode_kills_the_socket(emulator: EmulatorHandle) -> None:
    async def run() -> int | None:
        ws = await private_stream(emulator, PRIVATE)
        emulator.set_faults(ws_drop_mode="abort")
        assert emulator.drop_ws("private") == 1
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code

    assert asyncio.run(run()) == 1006  # no close frame: the TCP connection just died
    assert emulator.connections() == 0


async def recv_n(ws: ClientConnection, n: int, quiet: float = 0.3) -> list[dict[str, Any]]:
    """Exactly ``n`` messages (waiting up to 10 s each), then nothing for ``quiet`` s."""
    got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(n)]
    assert await drain(ws, quiet) == []
    return got


def test_private_duplicate_and_reorder(emulator: EmulatorHandle) -> None:
    # A market order then its fill: order+position at create, then 4 messages for the fill.
    async def run(copies: int = 1, **faults: Any) -> list[dict[str, Any]]:
        ws = await private_stream(emulator, PRIVATE)
        emulator.set_faults(**faults)
        await fill_one(emulator)
        got = await recv_n(ws, 6 * copies)
        await ws.close()
        emulator.reset_faults()
        return got

    plain = asyncio.run(run())
    batch = [m["topic"] for m in plain[-4:]]
    assert batch == ["execution", "order", "position", "wallet"]
    reordered = asyncio.run(run(private_reorder=True))
    assert [m["topic"] for m in reordered[-4:]] == list(reversed(batch))
    doubled = asyncio.run(run(2, private_duplicate=True))
    ids = [m["id"] for m in doubled]
    assert len(ids) == 2 * len(set(ids))
    assert all(ids[i] == ids[i + 1] for i in range(0, len(ids), 2))


def test_private_delay(emulator: EmulatorHandle) -> None:
    async def run() -> float:
        ws = await private_stream(emulator, ["execution"])
        emulator.set_faults(private_delay_ms=400)
        http = client(emulator)
        await asyncio.to_thread(place, http, side="Buy", orderType="Market", qty="0.01")
        started = time.monotonic()
        await emulator.step()
        await asyncio.wait_for(ws.recv(), 5)
        elapsed = time.monotonic() - started
        await ws.close()
        return elapsed

    assert asyncio.run(run()) >= 0.39


@pytest.mark.parametrize("mode", ["close", "500"])
def test_lost_reply_after_the_order_was_applied(emulator: EmulatorHandle, mode: str) -> None:
    http = client(emulator)
    emulator.set_faults(lose_reply_next=1, lose_reply_mode=mode)
    expected: type[Exception] = requests.ConnectionError if mode == "close" else FailedRequestError
    with pytest.raises(expected):
        place(http, side="Buy", orderType="Limit", qty="0.01", price="50000", orderLinkId="lost-1")
    # The order exists: a client resolves the lost reply by asking for its orderLinkId ...
    found = http.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="lost-1")
    assert [r["orderStatus"] for r in found["result"]["list"]] == ["New"]
    # ... and a blind resend is refused as a duplicate.
    with pytest.raises(InvalidRequestError) as err:
        place(http, side="Buy", orderType="Limit", qty="0.01", price="50000", orderLinkId="lost-1")
    assert err.value.status_code == 110072


def test_rate_limit_burst(emulator: EmulatorHandle) -> None:
    emulator.set_faults(rate_limit_next=2, rate_limit_reset_ms=5000)
    query = "category=linear&symbol=BTCUSDT"
    codes, resets = [], []
    for _ in range(3):
        ts = str(int(time.time() * 1000))
        sig = rest_signature(emulator.api_secret, ts, emulator.api_key, "5000", query)
        headers = {
            "X-BAPI-API-KEY": emulator.api_key,
            "X-BAPI-TIMESTAMP": ts,
            "X-BAPI-RECV-WINDOW": "5000",
            "X-BAPI-SIGN": sig,
        }
        resp = requests.get(
            f"{emulator.rest}/v5/position/list?{query}", headers=headers, timeout=10
        )
        codes.append(resp.json()["retCode"])
        resets.append(int(resp.headers["X-Bapi-Limit-Reset-Timestamp"]))
    assert codes == [10006, 10006, 0]
    assert all(r >= emulator.server_ms() + 3000 for r in resets[:2])


def test_clock_skew(emulator: EmulatorHandle) -> None:
    http = client(emulator, max_retries=1)
    emulator.set_faults(clock_skew_ms=10_000)
    server = int(http.get_server_time()["time"])
    assert server - int(time.time() * 1000) >= 9_000
    with pytest.raises(FailedRequestError):  # 10002 with pybit's own retries exhausted
        http.get_positions(category="linear", symbol="BTCUSDT")
    emulator.set_faults(clock_skew_ms=0)
    assert http.get_positions(category="linear", symbol="BTCUSDT")["retCode"] == 0


def test_http_errors_then_recovery(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    emulator.set_faults(http_error_next=2, http_error_status=503)
    for _ in range(2):
        with pytest.raises(FailedRequestError) as err:
            http.get_positions(category="linear", symbol="BTCUSDT")
        assert err.value.status_code == 503
    assert http.get_positions(category="linear", symbol="BTCUSDT")["retCode"] == 0


def test_timeout_then_the_request_still_lands(emulator: EmulatorHandle) -> None:
    http = client(emulator, timeout=0.3)
    emulator.set_faults(timeout_next=1, timeout_s=1.0)
    with pytest.raises(requests.Timeout):
        place(http, side="Buy", orderType="Limit", qty="0.01", price="50000", orderLinkId="slow-1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if emulator.call(lambda st: "slow-1" in st.link_ids):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the stalled order was never applied")


def _reject_pattern(emu: EmulatorHandle, n: int) -> list[bool]:
    http = client(emu)
    out = []
    for i in range(n):
        try:
            place(http, side="Buy", orderType="Limit", qty="0.001", price=f"{50000 + i}")
            out.append(False)
        except InvalidRequestError as err:
            assert err.status_code == 10001
            out.append(True)
    return out


def test_random_rejects_are_seeded(emulator_factory) -> None:
    a, b = emulator_factory(), emulator_factory()
    for emu in (a, b):
        emu.set_faults(reject_rate=0.5, seed=7)
    pattern = _reject_pattern(a, 10)
    assert any(pattern) and not all(pattern)
    assert _reject_pattern(b, 10) == pattern
    assert a.call(lambda st: len(st.orders)) == pattern.count(False)


def test_async_reject_acks_then_reports_rejected(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    emulator.set_faults(reject_rate=1.0, reject_mode="async")
    created = place(
        http, side="Buy", orderType="Limit", qty="0.01", price="50000", orderLinkId="r1"
    )
    assert created["retCode"] == 0
    row = http.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="r1")
    assert row["result"]["list"][0]["orderStatus"] == "Rejected"
    assert http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []


def test_control_endpoints(emulator: EmulatorHandle) -> None:
    base = f"{emulator.rest}/_emulator"
    ok = requests.post(f"{base}/faults", json={"http_error_next": 1}, timeout=10)
    assert ok.status_code == 200 and ok.json()["http_error_next"] == 1
    assert requests.get(f"{emulator.rest}/v5/market/time", timeout=10).status_code == 503
    bad = requests.post(f"{base}/faults", json={"no_such_fault": 1}, timeout=10)
    assert bad.status_code == 400 and "no_such_fault" in bad.json()["error"]
    before = requests.get(f"{base}/state", timeout=10).json()
    stepped = requests.post(f"{base}/step", json={"n": 3}, timeout=10).json()
    assert stepped["played"] == 3 and stepped["cursor"] == before["cursor"] + 3
    assert requests.post(f"{base}/drop", json={"kind": "all"}, timeout=10).json()["dropped"] == 0
    requests.post(f"{base}/faults", json={"clock_skew_ms": 5000}, timeout=10)
    assert requests.post(f"{base}/faults/reset", timeout=10).json()["clock_skew_ms"] == 0


def test_state_outlives_clients_and_pybit_reconnects(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    pybit_ws_urls(monkeypatch, emulator)
    http = client(emulator)
    place(http, side="Buy", orderType="Limit", qty="0.01", price="50000", orderLinkId="keep-1")
    inbox = Inbox()
    with pybit_ws(emulator, "private") as ws:
        ws.execution_stream(callback=inbox)
        wait_subscribed(emulator, {"execution"})
        first = emulator.call(lambda _: [c.conn_id for c in emulator.emulator.hub.conns])
        emulator.drop_ws("all")
        # pybit reconnects, re-authenticates and re-subscribes by itself.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = emulator.call(
                lambda _: [c.conn_id for c in emulator.emulator.hub.conns if c.topics]
            )
            if now and now != first:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("pybit did not come back")
        place(http, side="Buy", orderType="Market", qty="0.01", orderLinkId="keep-2")
        emulator.advance(1)
        got = inbox.wait_for(lambda items: len(items) >= 1)
    assert got[0]["data"][0]["orderLinkId"] == "keep-2"
    still = http.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="keep-1")
    assert still["result"]["list"][0]["orderStatus"] == "New"
