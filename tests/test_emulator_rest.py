"""pybit's HTTP client against the emulator, endpoint by endpoint.

Each response is also checked against Bybit's own documented sample of that endpoint
(/work/shared/reference/bybit-samples): every field the sample has must be present with the
same JSON type (strings for numbers, numbers for positionIdx/seq, booleans for flags).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

from engine.instrument import BTCUSDT, Instrument
from tools.bybit_emulator import EmulatorHandle

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "bybit-samples"
INST = Instrument(BTCUSDT)


def sample(name: str) -> Any:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"Bybit sample payloads absent: {path}")
    return json.loads(path.read_text())


def assert_shape(ours: Any, theirs: Any, where: str = "$") -> None:
    """Every key of Bybit's sample is in ours with the same JSON type (recursively)."""
    if theirs is None:
        return
    if where.endswith("cumFeeDetail"):  # a {coin: amount} map, not fixed keys
        assert isinstance(ours, dict)
        return
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{where}: expected an object, got {ours!r}"
        for key, value in theirs.items():
            assert key in ours, f"{where}.{key} missing"
            assert_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), f"{where}: expected a list, got {ours!r}"
        if theirs and ours:
            assert_shape(ours[0], theirs[0], f"{where}[0]")
    elif isinstance(theirs, bool):
        assert isinstance(ours, bool), f"{where}: expected a boolean, got {ours!r}"
    elif isinstance(theirs, int | float):
        assert isinstance(ours, int | float) and not isinstance(ours, bool), (
            f"{where}: expected a number, got {ours!r}"
        )
    else:
        assert isinstance(ours, str), f"{where}: expected a string, got {ours!r}"


def client(emu: EmulatorHandle, **kw: Any) -> HTTP:
    http = HTTP(api_key=emu.api_key, api_secret=emu.api_secret, retry_delay=0, **kw)
    http.endpoint = emu.rest
    return http


def last_close(emu: EmulatorHandle) -> Decimal:
    return Decimal(INST.ticks_to_price(emu.call(lambda st: st.last_price)))


def price_str(value: Decimal) -> str:
    return INST.ticks_to_price(INST.price_to_ticks(value, "ROUND_FLOOR"))


def place(http: HTTP, **kw: Any) -> dict[str, Any]:
    params = {"category": "linear", "symbol": "BTCUSDT", **kw}
    return http.place_order(**params)


def test_server_time_and_envelope(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    resp = http.get_server_time()
    assert_shape(resp, sample("rest-market-time.json"))
    now = emulator.server_ms()
    assert abs(int(resp["result"]["timeSecond"]) * 1000 - now) < 5000
    assert int(resp["result"]["timeNano"]) // 1_000_000 // 1000 == int(resp["result"]["timeSecond"])


def test_kline_newest_first_and_pagination(emulator: EmulatorHandle, bybit_candles) -> None:
    http = client(emulator)
    played = bybit_candles[:100]
    first = http.get_kline(category="linear", symbol="BTCUSDT", interval="5", limit=30)
    assert_shape(first, sample("rest-market-kline.json"))
    rows = first["result"]["list"]
    assert len(rows) == 30
    starts = [int(r[0]) for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert starts[0] == played[-1].open_ms  # nothing from the future
    newest = played[-1]
    assert rows[0][1:5] == [
        INST.ticks_to_price(v) for v in (newest.open, newest.high, newest.low, newest.close)
    ]
    # Page backwards with end = oldest start - 1 until the past runs out.
    seen = list(starts)
    end = starts[-1] - 1
    while True:
        page = http.get_kline(category="linear", symbol="BTCUSDT", interval="5", limit=30, end=end)
        got = [int(r[0]) for r in page["result"]["list"]]
        if not got:
            break
        seen.extend(got)
        end = got[-1] - 1
    assert seen == sorted((c.open_ms for c in played), reverse=True)
    window = http.get_kline(
        category="linear",
        symbol="BTCUSDT",
        interval="5",
        start=played[10].open_ms,
        end=played[19].open_ms,
    )
    assert [int(r[0]) for r in window["result"]["list"]] == [
        c.open_ms for c in reversed(played[10:20])
    ]
    emulator.advance(3)
    after = http.get_kline(category="linear", symbol="BTCUSDT", interval="5", limit=1)
    assert int(after["result"]["list"][0][0]) == bybit_candles[102].open_ms
    for unserved in ("3", "W"):  # finer than the file, or not a whole number of its bars
        with pytest.raises(InvalidRequestError) as err:
            http.get_kline(category="linear", symbol="BTCUSDT", interval=unserved)
        assert err.value.status_code == 10001


def test_kline_rolls_up_longer_intervals(emulator: EmulatorHandle, bybit_candles) -> None:
    http = client(emulator)
    played = bybit_candles[:100]
    hour = 3_600_000
    groups: dict[int, list] = {}
    for c in played:
        groups.setdefault(c.open_ms - c.open_ms % hour, []).append(c)
    rows = http.get_kline(category="linear", symbol="BTCUSDT", interval="60", limit=1000)
    got = rows["result"]["list"]
    assert [int(r[0]) for r in got] == sorted(groups, reverse=True)
    for r in got:
        bars = groups[int(r[0])]
        want = (bars[0].open, max(b.high for b in bars), min(b.low for b in bars), bars[-1].close)
        assert r[1:5] == [INST.ticks_to_price(v) for v in want]
        assert Decimal(r[5]) == sum(Decimal(INST.lots_to_qty(b.volume)) for b in bars)
    # The newest hour is still open when the played bars stop inside it.
    assert len(groups[int(got[0][0])]) < 12
    two = http.get_kline(
        category="linear", symbol="BTCUSDT", interval="60", limit=2, end=int(got[2][0])
    )
    assert [r[0] for r in two["result"]["list"]] == [got[2][0], got[3][0]]


def test_instruments_info_matches_the_spec(emulator: EmulatorHandle) -> None:
    resp = client(emulator).get_instruments_info(category="linear", symbol="BTCUSDT")
    assert_shape(resp, sample("rest-market-instruments-info-linear.json"))
    row = resp["result"]["list"][0]
    assert Decimal(row["priceFilter"]["tickSize"]) == Decimal(BTCUSDT.tick_size)
    assert Decimal(row["lotSizeFilter"]["qtyStep"]) == Decimal(BTCUSDT.qty_step)
    assert Decimal(row["lotSizeFilter"]["minNotionalValue"]) == Decimal(BTCUSDT.min_notional)
    other = client(emulator).get_instruments_info(category="linear", symbol="NOPEUSDT")
    assert other["result"]["list"] == []


def test_limit_order_lifecycle(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    low = price_str(last_close(emulator) * Decimal("0.9"))
    created = place(http, side="Buy", orderType="Limit", qty="0.01", price=low, orderLinkId="L-1")
    assert_shape(created, sample("rest-order-create.json"))
    order_id = created["result"]["orderId"]
    assert created["result"]["orderLinkId"] == "L-1"

    rt = http.get_open_orders(category="linear", symbol="BTCUSDT")
    assert_shape(rt, sample("rest-order-realtime.json"))
    (row,) = rt["result"]["list"]
    assert (row["orderId"], row["orderStatus"], row["price"], row["qty"]) == (
        order_id,
        "New",
        low,
        "0.010",
    )
    assert row["leavesQty"] == "0.010" and row["cumExecQty"] == "0.000"

    new_price = price_str(Decimal(low) - 100)
    amended = http.amend_order(
        category="linear", symbol="BTCUSDT", orderLinkId="L-1", price=new_price, qty="0.02"
    )
    assert_shape(amended, sample("rest-order-amend.json"))
    row = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert (row["price"], row["qty"]) == (new_price, "0.020")

    cancelled = http.cancel_order(category="linear", symbol="BTCUSDT", orderId=order_id)
    assert_shape(cancelled, sample("rest-order-cancel.json"))
    assert http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []
    # By orderLinkId the realtime endpoint still finds the closed order.
    by_link = http.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="L-1")
    assert by_link["result"]["list"][0]["orderStatus"] == "Cancelled"
    assert by_link["result"]["list"][0]["cancelType"] == "CancelByUser"
    hist = http.get_order_history(category="linear", symbol="BTCUSDT")
    assert_shape(hist, sample("rest-order-history.json"))
    assert [r["orderId"] for r in hist["result"]["list"]] == [order_id]

    with pytest.raises(InvalidRequestError) as err:
        http.cancel_order(category="linear", symbol="BTCUSDT", orderId=order_id)
    assert err.value.status_code == 110001
    with pytest.raises(InvalidRequestError) as err:
        place(http, side="Buy", orderType="Limit", qty="0.01", price=low, orderLinkId="L-1")
    assert err.value.status_code == 110072


def test_market_fill_executions_position_wallet(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    before = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert Decimal(before["totalWalletBalance"]) == Decimal("10000")
    created = place(http, side="Buy", orderType="Market", qty="0.05", orderLinkId="M-1")
    assert http.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"] == []
    emulator.advance(1)  # an order placed now fills during the next candle, not before

    ex = http.get_executions(category="linear", symbol="BTCUSDT")
    assert_shape(ex, sample("rest-execution-list.json"))
    fills = ex["result"]["list"]
    assert sum(Decimal(f["execQty"]) for f in fills) == Decimal("0.05")
    assert {f["orderId"] for f in fills} == {created["result"]["orderId"]}
    assert all(f["orderLinkId"] == "M-1" and f["isMaker"] is False for f in fills)
    value = sum(Decimal(f["execValue"]) for f in fills)
    fee = sum(Decimal(f["execFee"]) for f in fills)
    assert all(
        Decimal(f["execValue"]) == Decimal(f["execPrice"]) * Decimal(f["execQty"]) for f in fills
    )
    assert fee == pytest.approx(value * Decimal("0.00055"), abs=Decimal("0.00000002"))

    order = http.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="M-1")
    row = order["result"]["list"][0]
    assert (row["orderStatus"], row["cumExecQty"], row["leavesQty"]) == ("Filled", "0.050", "0.000")
    assert Decimal(row["cumExecValue"]) == value

    pos = http.get_positions(category="linear", symbol="BTCUSDT")
    assert_shape(pos, sample("rest-position-list.json"))
    p = pos["result"]["list"][0]
    assert (p["side"], p["size"]) == ("Buy", "0.050")
    assert Decimal(p["positionValue"]) == value
    assert Decimal(p["avgPrice"]) == value / Decimal("0.05")

    wallet = http.get_wallet_balance(accountType="UNIFIED")
    assert_shape(wallet, sample("rest-account-wallet-balance.json"))
    acct = wallet["result"]["list"][0]
    assert Decimal(acct["totalWalletBalance"]) == Decimal("10000") - fee
    assert Decimal(acct["totalAvailableBalance"]) < Decimal(acct["totalWalletBalance"])

    # Close with a reduce-only market order; a second one has nothing left to reduce.
    place(http, side="Sell", orderType="Market", qty="0.05", reduceOnly=True)
    emulator.advance(1)
    flat = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert (flat["side"], flat["size"]) == ("", "0.000")
    with pytest.raises(InvalidRequestError) as err:
        place(http, side="Sell", orderType="Market", qty="0.05", reduceOnly=True)
    assert err.value.status_code == 110017
    by_coin = http.get_positions(category="linear", settleCoin="USDT")
    assert by_coin["result"]["list"] == []


def test_execution_cursor_pagination(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    for i in range(7):
        place(http, side="Buy" if i % 2 == 0 else "Sell", orderType="Market", qty="0.01")
        emulator.advance(1)
    everything = http.get_executions(category="linear", symbol="BTCUSDT", limit=100)
    all_ids = [e["execId"] for e in everything["result"]["list"]]
    assert len(all_ids) == len(set(all_ids)) >= 7
    assert everything["result"]["nextPageCursor"] == ""
    paged: list[str] = []
    cursor = ""
    while True:
        kw: dict[str, Any] = {"category": "linear", "symbol": "BTCUSDT", "limit": 3}
        if cursor:
            kw["cursor"] = cursor
        page = http.get_executions(**kw)
        paged.extend(e["execId"] for e in page["result"]["list"])
        cursor = page["result"]["nextPageCursor"]
        if not cursor:
            break
    assert paged == all_ids
    times = [int(e["execTime"]) for e in everything["result"]["list"]]
    assert times == sorted(times, reverse=True)


def test_cancel_all_and_filters(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    last = last_close(emulator)
    ids = []
    for i in range(3):
        r = place(
            http,
            side="Buy",
            orderType="Limit",
            qty="0.01",
            price=price_str(last * Decimal("0.8") - i),
        )
        ids.append(r["result"]["orderId"])
    stop = place(
        http,
        side="Sell",
        orderType="Market",
        qty="0.01",
        triggerPrice=price_str(last * Decimal("0.7")),
        triggerDirection=2,
    )
    rows = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert {r["orderId"] for r in rows} == {*ids, stop["result"]["orderId"]}
    cond = next(r for r in rows if r["orderId"] == stop["result"]["orderId"])
    assert (cond["orderStatus"], cond["stopOrderType"], cond["triggerDirection"]) == (
        "Untriggered",
        "Stop",
        2,
    )
    res = http.cancel_all_orders(category="linear", symbol="BTCUSDT", orderFilter="Order")
    assert_shape(res, sample("rest-order-cancel-all.json"))
    assert {r["orderId"] for r in res["result"]["list"]} == set(ids)
    left = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [r["orderId"] for r in left] == [stop["result"]["orderId"]]
    http.cancel_all_orders(category="linear", settleCoin="USDT")
    closed = http.get_order_history(category="linear", symbol="BTCUSDT", orderStatus="Deactivated")
    assert [r["orderId"] for r in closed["result"]["list"]] == [stop["result"]["orderId"]]


def test_realtime_pagination(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    last = last_close(emulator)
    for i in range(5):
        place(
            http,
            side="Buy",
            orderType="Limit",
            qty="0.01",
            price=price_str(last * Decimal("0.8") - i),
        )
    first = http.get_open_orders(category="linear", symbol="BTCUSDT", limit=2)
    assert len(first["result"]["list"]) == 2 and first["result"]["nextPageCursor"]
    seen = [r["orderId"] for r in first["result"]["list"]]
    cursor = first["result"]["nextPageCursor"]
    while cursor:
        page = http.get_open_orders(category="linear", symbol="BTCUSDT", limit=2, cursor=cursor)
        seen.extend(r["orderId"] for r in page["result"]["list"])
        cursor = page["result"]["nextPageCursor"]
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"side": "Buy", "orderType": "Limit", "qty": "0.0105", "price": "50000"}, 10001),
        ({"side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "50000.05"}, 10001),
        ({"side": "Buy", "orderType": "Limit", "qty": "0.0001", "price": "50000"}, 10001),
        ({"side": "Buy", "orderType": "Limit", "qty": "5000", "price": "50000"}, 10001),
        ({"side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "1000"}, 110094),
        ({"side": "Up", "orderType": "Limit", "qty": "0.01", "price": "50000"}, 10001),
        (
            {
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.01",
                "price": "50000",
                "orderLinkId": "x" * 37,
            },
            10001,
        ),
        ({"side": "Buy", "orderType": "Limit", "qty": "100", "price": "80000"}, 110007),
        ({"side": "Sell", "orderType": "Market", "qty": "0.01", "reduceOnly": True}, 110017),
        (
            {
                "side": "Buy",
                "orderType": "Market",
                "qty": "0.01",
                "triggerPrice": "1000",
                "triggerDirection": 1,
            },
            110092,
        ),
    ],
)
def test_order_validation_codes(
    emulator: EmulatorHandle, params: dict[str, Any], code: int
) -> None:
    http = client(emulator)
    with pytest.raises(InvalidRequestError) as err:
        place(http, **params)
    assert err.value.status_code == code
    # A refused order creates nothing.
    assert http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []
    assert http.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"] == []


def test_post_only_that_would_take_is_cancelled(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    high = price_str(last_close(emulator) * Decimal("1.05"))
    r = place(http, side="Buy", orderType="Limit", qty="0.01", price=high, timeInForce="PostOnly")
    hist = http.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert hist[0]["orderId"] == r["result"]["orderId"]
    assert (hist[0]["orderStatus"], hist[0]["rejectReason"]) == (
        "Cancelled",
        "EC_PostOnlyWillTakeLiquidity",
    )
