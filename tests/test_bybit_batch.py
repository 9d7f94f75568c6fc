"""Batch order writes (create/amend/cancel-batch) through BybitVenue against the emulator, over
REST and over the WebSocket Trade API: one request for independent orders, each item answered
on its own (a refused item among accepted ones), and a lost batch reply resolved by looking
each orderLinkId up, never by sending the batch again. pybit's own batch call is the outside
check of the emulator's REST batch shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

from adapters.bybit.keys import ApiKeys, Secret
from adapters.bybit.venue import BybitVenue
from adapters.bybit.wire import (
    USES,
    WS_SOURCES,
    Frame,
    Link,
    RunStart,
    Use,
    WireTap,
    convert_ws,
    decode_record,
    envelope,
    new_converter,
    ws_message,
)
from engine.events import (
    AmendOrder,
    CancelOrder,
    CommandRejected,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderRejected,
)
from tests.test_bybit_venue import Session, config_for, order, run
from tests.test_emulator_rest import assert_shape

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "bybit_trade_ws.json").read_text())
TRANSPORTS = ["rest", "trade_api"]


def _over(emu: Any, transport: str) -> dict[str, Any]:
    return {"trade_api": True, "trade_ws_url": emu.ws_trade} if transport == "trade_api" else {}


def _requests(s: Session, path: str) -> int:
    """Requests the venue sent to ``path`` (REST calls, or Trade API requests)."""
    rest = s.venue.rest.stats.calls.get(path, 0)
    trade = s.venue.trade.sent.get(path, 0) if s.venue.trade is not None else 0
    return rest + trade


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_independent_orders_go_as_one_batch_and_a_refused_item_is_rejected_alone(
    emulator: Any, transport: str
) -> None:
    async def scenario(s: Session) -> None:
        far = s.last_close() - 30_000
        cmds = [order("b-1", 2, far), order("b-big", 500_000), order("b-2", 3, far - 10)]
        for cmd in cmds:
            assert s.book.submit(cmd) is not None
        await s.venue.submit_batch(cmds)
        await s.until(lambda: len(s.of(OrderAccepted)) == 2 and len(s.of(OrderRejected)) == 1)

    s = run(emulator, scenario, **_over(emulator, transport))
    assert _requests(s, "/v5/order/create-batch") == 1
    assert _requests(s, "/v5/order/create") == 0
    (rejected,) = s.of(OrderRejected)
    assert (rejected.client_id, rejected.code) == ("b-big", 110007)
    venue_ids = emulator.call(lambda st: {c: r.order_id for c, r in st.by_client.items()})
    assert {e.client_id: e.venue_id for e in s.of(OrderAccepted)} == {
        "b-1": venue_ids["b-1"],
        "b-2": venue_ids["b-2"],
    }
    assert s.venue.submissions == {"b-1": 1, "b-big": 1, "b-2": 1}
    assert s.refused == []


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("mode", ["close", "500"])
def test_a_lost_batch_reply_is_resolved_by_lookup_not_sent_again(
    emulator: Any, transport: str, mode: str
) -> None:
    async def scenario(s: Session) -> None:
        far = s.last_close() - 30_000
        cmds = [order("lb-1", 2, far), order("lb-2", 3, far - 10)]
        for cmd in cmds:
            assert s.book.submit(cmd) is not None
        s.emu.set_faults(lose_reply_next=1, lose_reply_mode=mode)
        await s.venue.submit_batch(cmds)
        await s.until(lambda: len(s.of(OrderAccepted)) == 2)

    s = run(emulator, scenario, **_over(emulator, transport))
    creates = emulator.emulator.wire.creates
    assert creates["lb-1"] == 1 and creates["lb-2"] == 1  # each placed once, never resent
    assert _requests(s, "/v5/order/create-batch") == 1
    assert _requests(s, "/v5/order/create") == 0
    assert s.venue.submissions == {"lb-1": 1, "lb-2": 1}
    assert s.venue.rest.stats.calls["/v5/order/realtime"] >= 2  # looked up, both
    assert s.refused == [] and not s.of(OrderRejected)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_amends_and_cancels_go_as_batches_with_per_item_refusals(
    emulator: Any, transport: str
) -> None:
    async def scenario(s: Session) -> None:
        far = s.last_close() - 30_000
        for cid, px in (("ac-1", far), ("ac-2", far - 10)):
            await s.submit(order(cid, 2, px))
        await s.until(lambda: len(s.of(OrderAccepted)) == 2)
        await s.venue.amend_batch(
            [
                AmendOrder(ts=0, client_id="ac-1", price=far - 20),
                AmendOrder(ts=0, client_id="nobody", price=far - 20),
                AmendOrder(ts=0, client_id="ac-2", qty=5),
            ]
        )
        await s.until(lambda: len(s.of(OrderAmended)) == 2 and bool(s.of(CommandRejected)))
        await s.venue.cancel_batch(
            [CancelOrder(ts=0, client_id="ac-1"), CancelOrder(ts=0, client_id="ac-2")]
        )
        await s.until(lambda: len(s.of(OrderCancelled)) == 2)

    s = run(emulator, scenario, **_over(emulator, transport))
    assert _requests(s, "/v5/order/amend-batch") == 1
    assert _requests(s, "/v5/order/cancel-batch") == 1
    assert _requests(s, "/v5/order/amend") == _requests(s, "/v5/order/cancel") == 0
    (refused,) = s.of(CommandRejected)
    assert (refused.client_id, refused.command, refused.code) == ("nobody", "amend", 110001)
    rows = emulator.call(lambda st: {c: (r.price, r.qty) for c, r in st.by_client.items()})
    amended = {e.client_id: e for e in s.of(OrderAmended)}
    assert amended["ac-1"].price == rows["ac-1"][0] and amended["ac-2"].qty == rows["ac-2"][1]
    assert s.refused == []


def test_pybit_batch_place_against_the_emulator_answers_item_by_item(emulator: Any) -> None:
    """pybit's place_batch_order unchanged: the documented shape, one code per item."""
    http = HTTP(api_key=emulator.api_key, api_secret=emulator.api_secret, max_retries=1)
    http.endpoint = emulator.rest
    item = {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "timeInForce": "GTC"}
    body = http.place_batch_order(
        category="linear",
        request=[
            {**item, "qty": "0.002", "price": "30000", "orderLinkId": "pb-1"},
            {**item, "qty": "500", "price": "30000", "orderLinkId": "pb-big"},
        ],
    )
    reply = {**body, "data": body["result"]}
    assert_shape(
        {k: reply[k] for k in ("retCode", "retMsg", "data", "retExtInfo")},
        {
            k: FIXTURES["batch_create_response"][k]
            for k in ("retCode", "retMsg", "data", "retExtInfo")
        },
    )
    codes = [c["code"] for c in body["retExtInfo"]["list"]]
    assert codes == [0, 110007]
    rows = body["result"]["list"]
    assert [r["orderLinkId"] for r in rows] == ["pb-1", "pb-big"]
    assert rows[0]["orderId"] and rows[1]["orderId"] == ""
    many = [
        {**item, "qty": "0.002", "price": "30000", "orderLinkId": f"pb-{i}x"} for i in range(21)
    ]
    with pytest.raises(InvalidRequestError, match="at most 20"):  # refused whole
        http.place_batch_order(category="linear", request=many)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_batch_reply_kept_by_the_wire_tap_converts_offline_to_the_same_events(
    emulator: Any, transport: str
) -> None:
    """What ``replay verify --wire`` re-runs: the kept frames and uses, a batch's items
    included, convert offline to exactly the events the venue emitted."""

    async def main() -> tuple[list[Event], list[Any]]:
        keys = ApiKeys(emulator.api_key, Secret(emulator.api_secret), "test")
        tap = WireTap(enabled=True)
        venue = BybitVenue(config_for(emulator, **_over(emulator, transport)), keys, tap=tap)
        await venue.start()
        s = Session(emulator, venue)
        try:
            far = s.last_close() - 30_000
            cmds = [order("w-1", 2, far), order("w-big", 500_000), order("w-2", 3, far - 10)]
            for cmd in cmds:
                assert s.book.submit(cmd) is not None
            await venue.submit_batch(cmds)
            await s.until(lambda: len(s.of(OrderAccepted)) + len(s.of(OrderRejected)) == 3)
        finally:
            await s.close()
        seqs = range(1, len(s.events) + 1)  # as if all were logged: a Link names each's maker
        return s.events, [decode_record(r) for r in tap.take(list(s.events), seqs)]

    events, records = asyncio.run(main())
    made = [events[r.seq - 1] for r in records if isinstance(r, Link)]
    start = next(r for r in records if isinstance(r, RunStart))
    frames = {r.n: r for r in records if isinstance(r, Frame)}
    conv = new_converter(start)
    offline: list[Event] = []
    for r in records:  # in arrival order, as verify --wire replays them
        if isinstance(r, Frame) and r.source in WS_SOURCES:
            offline.extend(convert_ws(conv, ws_message(r.body))[0])
        elif isinstance(r, Use):
            bodies = [envelope(frames[n]) for n in r.frames if n in frames]
            offline.extend(USES[r.how](conv, bodies, r.extra))
    assert offline == made
    answers = [e for e in made if isinstance(e, OrderAccepted | OrderRejected)]
    assert sorted(e.client_id for e in answers) == ["w-1", "w-2", "w-big"]
    assert any(isinstance(r, Use) and "item" in r.extra for r in records)  # from the batch
