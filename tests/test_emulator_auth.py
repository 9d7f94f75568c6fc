"""Signatures, the receive window and rate limits, spoken over raw HTTP (``requests``) so the
exact bytes signed and sent are under the test's control, and through pybit where its own
retry behaviour matters."""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from pybit.unified_trading import HTTP

from tools.bybit_emulator import EmulatorHandle
from tools.bybit_emulator.auth import rest_signature, sign, ws_signature
from tools.bybit_emulator.ratelimit import Budget, RateLimiter

LIMIT_HEADERS = ("X-Bapi-Limit", "X-Bapi-Limit-Status", "X-Bapi-Limit-Reset-Timestamp")


def test_signatures_match_the_reference_vectors() -> None:
    # Vectors from /work/shared/reference/bybit-v5.md §1.3 (computed independently there).
    key, secret, ts, win = "TESTKEY", "TEST_SECRET_do_not_use", "1700000000000", "5000"
    get = rest_signature(secret, ts, key, win, "category=linear&symbol=BTCUSDT")
    assert get == "c08ead741ff1cf3443724674fac186660881f210122ffe5653ceeaf00e674fe8"
    body = (
        '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit",'
        '"qty":"0.001","price":"50000","timeInForce":"GTC","orderLinkId":"t-1"}'
    )
    post = rest_signature(secret, ts, key, win, body)
    assert post == "16e3d27bb99b35b5a2a9088630ba4c922792dd51923ee9e9d81e350c8a5302f2"
    spaced = json.dumps(json.loads(body))
    assert rest_signature(secret, ts, key, win, spaced) == (
        "96389cec9ecae8d75abcb589fc89e7a4ac79ae542a013b186d37dfd349f39c82"
    )
    assert ws_signature(secret, 1700000001000) == (
        "8b63ea29a1a2eccb8a2c5bb06a8bdf08f359c6d61101a0b7d3cd829b84c65c5d"
    )
    assert sign(secret, "GET/realtime1700000001000") == ws_signature(secret, 1700000001000)


def signed_headers(
    emu: EmulatorHandle,
    payload: str,
    *,
    ts: int | None = None,
    window: str = "5000",
    key: str | None = None,
    signature: str | None = None,
) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time() * 1000))
    k = key if key is not None else emu.api_key
    return {
        "X-BAPI-API-KEY": k,
        "X-BAPI-TIMESTAMP": stamp,
        "X-BAPI-RECV-WINDOW": window,
        "X-BAPI-SIGN": signature
        if signature is not None
        else rest_signature(emu.api_secret, stamp, k, window, payload),
        "Content-Type": "application/json",
    }


def get(emu: EmulatorHandle, path: str, query: str, **kw: Any) -> requests.Response:
    return requests.get(
        f"{emu.rest}{path}?{query}", headers=signed_headers(emu, query, **kw), timeout=10
    )


def post(emu: EmulatorHandle, path: str, body: str, **kw: Any) -> requests.Response:
    return requests.post(
        f"{emu.rest}{path}", data=body.encode(), headers=signed_headers(emu, body, **kw), timeout=10
    )


def code(resp: requests.Response) -> int:
    assert resp.status_code == 200, resp.text
    return int(resp.json()["retCode"])


def test_get_is_verified_over_the_raw_query(emulator: EmulatorHandle) -> None:
    unsorted = "symbol=BTCUSDT&category=linear"
    assert code(get(emulator, "/v5/position/list", unsorted)) == 0
    # Signing a re-sorted query while sending the original order must fail.
    resorted = "category=linear&symbol=BTCUSDT"
    headers = signed_headers(emulator, resorted)
    resp = requests.get(f"{emulator.rest}/v5/position/list?{unsorted}", headers=headers, timeout=10)
    assert code(resp) == 10004


def test_post_is_verified_over_the_raw_body(emulator: EmulatorHandle) -> None:
    body = (
        '{ "category":"linear",  "symbol":"BTCUSDT","side":"Buy", "orderType":"Limit",'
        '"qty":"0.001","price":"50000.0","orderLinkId":"raw-1"}'
    )
    assert code(post(emulator, "/v5/order/create", body)) == 0
    again = body.replace("raw-1", "raw-2")
    reserialised = json.dumps(json.loads(again))
    headers = signed_headers(emulator, reserialised)
    resp = requests.post(
        f"{emulator.rest}/v5/order/create", data=again.encode(), headers=headers, timeout=10
    )
    assert code(resp) == 10004
    assert emulator.call(lambda st: [r.link_id for r in st.orders.values()]) == ["raw-1"]


def test_bad_key_and_bad_signature(emulator: EmulatorHandle) -> None:
    q = "category=linear&symbol=BTCUSDT"
    assert code(get(emulator, "/v5/order/realtime", q, key="someone-else")) == 10003
    assert code(get(emulator, "/v5/order/realtime", q, signature="0" * 64)) == 10004
    resp = requests.get(f"{emulator.rest}/v5/order/realtime?{q}", timeout=10)  # no headers
    assert code(resp) == 10003
    # Public market data needs no signature at all.
    kline = requests.get(
        f"{emulator.rest}/v5/market/kline?category=linear&symbol=BTCUSDT&interval=5", timeout=10
    )
    assert code(kline) == 0


def test_receive_window(emulator: EmulatorHandle) -> None:
    q = "category=linear&symbol=BTCUSDT"
    now = emulator.server_ms()
    stale = get(emulator, "/v5/position/list", q, ts=now - 7000)
    assert code(stale) == 10002
    assert "recv_window[5000]" in stale.json()["retMsg"]
    assert code(get(emulator, "/v5/position/list", q, ts=now - 7000, window="20000")) == 0
    assert code(get(emulator, "/v5/position/list", q, ts=now + 3000)) == 10002
    assert code(get(emulator, "/v5/position/list", q, ts=now + 300)) == 0


def test_limit_headers_on_every_response(emulator: EmulatorHandle) -> None:
    q = "category=linear&symbol=BTCUSDT"
    responses = [
        requests.get(f"{emulator.rest}/v5/market/time", timeout=10),
        get(emulator, "/v5/order/realtime", q),
        get(emulator, "/v5/order/realtime", q, signature="bad"),
        post(emulator, "/v5/order/cancel", '{"category":"linear","symbol":"BTCUSDT"}'),
    ]
    for resp in responses:
        for h in LIMIT_HEADERS:
            assert h in resp.headers, (resp.url, h)
    reads = [int(r.headers["X-Bapi-Limit"]) for r in responses[1:3]]
    assert reads == [50, 50]
    assert int(responses[3].headers["X-Bapi-Limit"]) == 10
    # Status counts down within the window.
    assert int(responses[2].headers["X-Bapi-Limit-Status"]) < int(
        responses[1].headers["X-Bapi-Limit-Status"]
    )


def test_order_burst_gets_10006_with_a_future_reset(emulator: EmulatorHandle) -> None:
    low = "50000.0"
    codes = []
    last: requests.Response | None = None
    for i in range(25):
        body = json.dumps(
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.001",
                "price": low,
                "orderLinkId": f"burst-{i}",
            }
        )
        last = post(emulator, "/v5/order/create", body)
        codes.append(code(last))
    assert last is not None
    assert codes.count(0) == 10 and 10006 in codes
    assert last.json()["retMsg"] == "Too many visits!"
    assert int(last.headers["X-Bapi-Limit-Status"]) == 0
    reset = int(last.headers["X-Bapi-Limit-Reset-Timestamp"])
    assert reset > emulator.server_ms() - 50
    # Refused requests create nothing.
    assert emulator.call(lambda st: len(st.orders)) == 10


def test_pybit_waits_out_10006_and_succeeds(emulator: EmulatorHandle) -> None:
    http = HTTP(api_key=emulator.api_key, api_secret=emulator.api_secret, retry_delay=0)
    http.endpoint = emulator.rest
    emulator.set_faults(rate_limit_next=1, rate_limit_reset_ms=300)
    started = time.monotonic()
    resp = http.get_positions(category="linear", symbol="BTCUSDT")
    assert resp["retCode"] == 0
    assert time.monotonic() - started >= 0.2  # pybit slept until the reset timestamp


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 5),
    gaps=st.lists(st.integers(0, 700), min_size=1, max_size=40),
)
def test_rate_limiter_never_admits_more_than_the_limit_per_window(
    limit: int, gaps: list[int]
) -> None:
    rl = RateLimiter({"/p": Budget(limit, 1000)})
    now = 1_000_000
    admitted: list[int] = []
    for gap in gaps:
        now += gap
        v = rl.check("/p", now)
        recent = [t for t in admitted if t > now - 1000]
        # Sliding window: allowed exactly when fewer than `limit` were admitted in the last 1 s.
        assert v.allowed == (len(recent) < limit)
        if v.allowed:
            admitted.append(now)
            assert v.remaining == limit - len(recent) - 1
        else:
            assert v.reset_ms > now and v.remaining == 0


def test_market_data_over_the_ip_budget_gets_http_403(emulator: EmulatorHandle) -> None:
    def shrink(_: object) -> None:  # 600 per 5 s in production; 5 per 5 s for this test
        emulator.emulator.limiter.market = Budget(5, 5000)

    emulator.call(shrink)
    url = f"{emulator.rest}/v5/market/kline?category=linear&symbol=BTCUSDT&interval=5"
    replies = [requests.get(url, timeout=10) for _ in range(7)]
    assert [r.status_code for r in replies] == [200] * 5 + [403] * 2
    assert replies[-1].headers["X-Bapi-Limit"] == "5"
    assert int(replies[-1].headers["X-Bapi-Limit-Reset-Timestamp"]) > emulator.server_ms()
    # Signed endpoints have their own budgets and still answer.
    assert code(get(emulator, "/v5/position/list", "category=linear&symbol=BTCUSDT")) == 0
