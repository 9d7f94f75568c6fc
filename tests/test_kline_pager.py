"""The one kline pager (adapters.bybit.klines) and the venue's final order status."""

from __future__ import annotations

from typing import Any

from adapters.bybit.klines import PAGE_LIMIT, KlinePager
from adapters.bybit.venue import BybitVenue, final_order
from adapters.protocol import FinalOrder, Venue

MIN = 60_000


class FakeKlines:
    """Bybit's /v5/market/kline over candles opened at ``first..last`` (minutes)."""

    def __init__(self, first: int, last: int) -> None:
        self.opens = [m * MIN for m in range(first, last + 1)]
        self.requests: list[dict[str, int]] = []

    def answer(self, params: dict[str, int]) -> list[list[str]]:
        self.requests.append(params)
        rows = [
            t for t in self.opens if t >= params.get("start", 0) and t <= params.get("end", 1 << 62)
        ]
        newest_first = sorted(rows, reverse=True)[: params["limit"]]
        return [[str(t), "1", "2", "0.5", "1.5", "3", "4"] for t in newest_first]


def run(pager: KlinePager, venue: FakeKlines) -> None:
    while (params := pager.request()) is not None:
        pager.add(venue.answer(params))


def test_the_newest_n_closed_candles_page_backwards() -> None:
    venue = FakeKlines(0, 2_500)  # the candle opened at minute 2500 is still open
    pager = KlinePager(n=1_500)
    run(pager, venue)
    rows = pager.rows(MIN, now_ms=2_500 * MIN + 30_000)
    assert [int(r[0]) // MIN for r in rows] == list(range(1_000, 2_500))
    assert len(venue.requests) == 2 and venue.requests[0]["limit"] == PAGE_LIMIT


def test_candles_since_a_time_are_all_fetched_not_only_the_newest_page() -> None:
    venue = FakeKlines(0, 3_000)
    pager = KlinePager(start_ms=700 * MIN)
    run(pager, venue)
    rows = pager.rows(MIN, now_ms=3_001 * MIN)
    assert [int(r[0]) // MIN for r in rows] == list(range(700, 3_001))


def test_a_range_stops_at_its_start_and_keeps_overlapping_rows_once() -> None:
    venue = FakeKlines(0, 5_000)
    pager = KlinePager(start_ms=10 * MIN, end_ms=2_010 * MIN)
    run(pager, venue)
    pager.add(venue.answer({"limit": 5, "end": 20 * MIN}))  # an overlapping page
    rows = pager.rows(MIN, now_ms=10**12)
    assert [int(r[0]) // MIN for r in rows] == list(range(10, 2_010))
    assert pager.request() is None


def test_a_venue_with_fewer_candles_ends_the_pager() -> None:
    venue = FakeKlines(0, 49)
    pager = KlinePager(n=1_000)
    run(pager, venue)
    assert len(pager.rows(MIN, now_ms=10**12)) == 50 and len(venue.requests) == 1


def test_final_order_status_from_a_bybit_row() -> None:
    assert final_order(None) == FinalOrder("")
    row: dict[str, Any] = {"orderStatus": "PartiallyFilledCanceled", "orderId": "9"}
    assert final_order(row) == FinalOrder("Cancelled", "9", "")
    row = {"orderStatus": "Rejected", "orderId": "7", "rejectReason": "EC_NoEnoughBalance"}
    assert final_order(row) == FinalOrder("Rejected", "7", "EC_NoEnoughBalance")
    assert final_order({"orderStatus": "New"}).status == "Cancelled"  # not open any more


def test_the_bybit_venue_speaks_the_whole_protocol() -> None:
    from adapters.bybit.config import BybitConfig
    from adapters.bybit.keys import ApiKeys, Secret

    venue = BybitVenue(BybitConfig(environment="demo"), ApiKeys("k", Secret("s"), "test"))
    assert isinstance(venue, Venue)
    assert venue.name == "bybit-demo"
