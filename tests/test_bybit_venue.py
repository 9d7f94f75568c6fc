"""BybitVenue against the Bybit v5 emulator on 127.0.0.1: real sockets, real pybit, no mocks.

Every event the adapter produces is folded into the engine's own ``OrderBook``, so "the
right events" also means "events the engine's order state machine accepts"; executions are
compared with the emulator's own records by execId (none lost, none twice).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from adapters.bybit.config import BybitConfig
from adapters.bybit.keys import ApiKeys, Secret
from adapters.bybit.venue import BybitVenue
from adapters.protocol import Venue
from adapters.sim.config import SimConfig
from engine.events import (
    AmendOrder,
    CancelOrder,
    CandleClosed,
    ClockOffset,
    CommandRejected,
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    SubmitOrder,
)
from engine.instrument import MONEY_SCALE
from engine.orders import OrderBook, TransitionError

BIG = 1_000_000 * MONEY_SCALE
VENUE_ORDER_EVENTS = (
    OrderAccepted,
    OrderRejected,
    OrderTriggered,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
)


class Session:
    """A connected venue, everything it emitted, and the engine's order book folding it."""

    def __init__(self, emu: Any, venue: BybitVenue) -> None:
        self.emu, self.venue = emu, venue
        self.events: list[Event] = []
        self.book = OrderBook()
        self.refused: list[TransitionError] = []
        self.reconnects: list[tuple[str, int]] = []
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self.venue.instrument is not None
        unit = self.venue.instrument.notional_unit
        async for ev in self.venue.events():
            self.events.append(ev)
            if isinstance(ev, Fill):
                res: Any = self.book.fill(ev, unit)
            elif isinstance(ev, VENUE_ORDER_EVENTS):
                res = self.book.venue_event(ev)
            else:
                continue
            if isinstance(res, TransitionError):
                self.refused.append(res)

    async def submit(self, cmd: SubmitOrder) -> None:
        assert self.book.submit(cmd) is not None
        await self.venue.submit(cmd)

    def of(self, kind: type, client_id: str | None = None) -> list[Any]:
        return [
            e
            for e in self.events
            if isinstance(e, kind)
            and (client_id is None or getattr(e, "client_id", None) == client_id)
        ]

    async def until(self, pred: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.02)

    def last_close(self) -> int:
        return int(self.emu.call(lambda st: st.candles[st.cursor - 1].close))

    def emulator_execs(self, link: str | None = None) -> list[tuple[str, int]]:
        rows = self.emu.call(lambda st: [(e.exec_id, e.link_id, e.qty) for e in st.executions])
        return [(i, q) for i, lk, q in rows if link is None or lk == link]

    def fills(self, link: str | None = None) -> list[tuple[str, int]]:
        return [(f.exec_id, f.qty) for f in self.of(Fill, link)]

    async def close(self) -> None:
        await self.venue.close()
        await self._task


def config_for(emu: Any, **over: Any) -> BybitConfig:
    fields: dict[str, Any] = dict(
        environment="emulator",
        rest_url=emu.rest,
        public_ws_url=emu.ws_public,
        private_ws_url=emu.ws_private,
        timeframe="5m",
        http_timeout_s=1.0,
        backoff_base_s=0.05,
        backoff_max_s=0.5,
        reconnect_base_s=0.05,
        reconnect_max_s=0.5,
        ping_interval_s=0.5,
    )
    fields.update(over)
    return BybitConfig(**fields)


def run(emu: Any, scenario: Callable[[Session], Awaitable[None]], **over: Any) -> Session:
    async def main() -> Session:
        keys = ApiKeys(emu.api_key, Secret(emu.api_secret), "test")
        s: Session | None = None

        async def hook(stream: str, n: int) -> None:
            assert s is not None
            s.reconnects.append((stream, n))

        venue = await BybitVenue.connect(config_for(emu, **over), keys, on_reconnect=hook)
        s = Session(emu, venue)
        try:
            await scenario(s)
        finally:
            await s.close()
        return s

    return asyncio.run(main())


def order(cid: str, qty: int, price: int = 0, side: str = "Buy", **kw: Any) -> SubmitOrder:
    kind = "Limit" if price else "Market"
    return SubmitOrder(
        ts=0,
        client_id=cid,
        symbol="BTCUSDT",
        side=side,
        order_type=kind,
        qty=qty,
        price=price,
        **kw,
    )


@pytest.fixture
def big(emulator_factory: Callable[..., Any]) -> Any:
    """An emulator with a deep wallet and fills capped at 1% of each candle's volume."""
    return emulator_factory(balance=BIG, sim=SimConfig(max_volume_pct=1))


def test_the_adapter_is_a_venue(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        venue: Venue = s.venue  # mypy checks the structural match, isinstance the runtime one
        assert isinstance(venue, Venue)
        assert s.venue.spec is not None and s.venue.spec.tick_size == "0.1"

    s = run(emulator, scenario)
    assert isinstance(s.events[0], ClockOffset)


def test_round_trip_submit_partial_fill_amend_cancel_and_fill(big: Any) -> None:
    async def scenario(s: Session) -> None:
        close = s.last_close()
        await s.submit(order("rt-big", 5000, close + 500))  # marketable, 5 BTC > 1% of volume
        await s.submit(order("rt-far", 10, close - 5000))  # resting far below
        await s.submit(order("rt-mkt", 3))
        await s.until(lambda: len(s.of(OrderAccepted)) == 3)
        await s.emu.step(1)
        await s.until(lambda: bool(s.fills("rt-big")) and bool(s.fills("rt-mkt")))
        filled = sum(q for _, q in s.fills("rt-big"))
        assert 0 < filled < 5000  # a partial fill
        await s.venue.amend(AmendOrder(ts=0, client_id="rt-big", qty=filled + 7))
        await s.venue.amend(AmendOrder(ts=0, client_id="rt-far", price=close - 4000))
        await s.until(lambda: len(s.of(OrderAmended)) == 2)
        await s.emu.step(1)
        await s.until(lambda: sum(q for _, q in s.fills("rt-big")) == filled + 7)
        await s.venue.cancel(CancelOrder(ts=0, client_id="rt-far"))
        await s.until(lambda: bool(s.of(OrderCancelled, "rt-far")))
        await s.venue.cancel(CancelOrder(ts=0, client_id="rt-big"))  # already filled
        await s.until(lambda: bool(s.of(CommandRejected, "rt-big")))

    s = run(big, scenario)
    assert s.refused == []
    (amd_qty,) = s.of(OrderAmended, "rt-big")
    assert amd_qty.qty > 0 and amd_qty.price == 0
    (amd_px,) = s.of(OrderAmended, "rt-far")
    assert amd_px.price > 0 and amd_px.qty == 0
    assert s.of(OrderCancelled, "rt-far")[0].reason == "CancelByUser"
    assert s.of(CommandRejected, "rt-big")[0].code == 110001
    assert sum(q for _, q in s.fills("rt-mkt")) == 3
    big_order = s.book.get("rt-big")
    assert big_order is not None and big_order.status == "Filled"
    assert sorted(s.fills()) == sorted(s.emulator_execs())


def test_fatal_errors_become_rejections_and_are_not_retried(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        await s.submit(order("too-big", 500_000))  # 500 BTC on 10,000 USDT
        await s.submit(order("dust", 1, 1000))  # 0.001 BTC at 100 USDT: below 5 USDT notional
        await s.submit(order("ro", 2, reduce_only=True))  # reduce-only with no position
        await s.until(lambda: len(s.of(OrderRejected)) == 3)

    s = run(emulator, scenario)
    codes = {e.client_id: e.code for e in s.of(OrderRejected)}
    assert codes == {"too-big": 110007, "dust": 110094, "ro": 110017}
    assert s.venue.submissions == {"too-big": 1, "dust": 1, "ro": 1}
    assert s.refused == []


@pytest.mark.parametrize("mode", ["close", "500"])
def test_lost_create_reply_is_resolved_by_lookup_not_resent(emulator: Any, mode: str) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(lose_reply_next=1, lose_reply_mode=mode)
        await s.submit(order("lost-1", 2))
        await s.until(lambda: bool(s.of(OrderAccepted, "lost-1")))
        await s.emu.step(1)
        await s.until(lambda: bool(s.fills("lost-1")))

    s = run(emulator, scenario)
    assert s.venue.submissions["lost-1"] == 1  # never sent a second time
    links = emulator.call(lambda st: [r.link_id for r in st.orders.values()])
    assert links.count("lost-1") == 1
    assert len(s.of(OrderAccepted, "lost-1")) == 1 and s.refused == []


def test_timeout_after_apply_is_resolved_by_lookup(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(timeout_next=1, timeout_s=1.5, http_fault_path="/v5/order/create")
        await s.submit(order("slow-1", 2, s.last_close() - 3000))
        await s.until(lambda: bool(s.of(OrderAccepted, "slow-1")))

    s = run(emulator, scenario, http_timeout_s=0.5)
    links = emulator.call(lambda st: [r.link_id for r in st.orders.values()])
    assert links.count("slow-1") == 1
    assert len(s.of(OrderAccepted, "slow-1")) == 1 and not s.of(OrderRejected)


def test_a_resend_refused_after_a_timed_out_create_does_not_reject_the_order(
    emulator: Any,
) -> None:
    """The first create stalls at the venue (applied 2 s later), its lookups and the resend
    meet 10006: the first attempt may still land, so the order is not called rejected (the
    soak found a late fill of an order logged as rejected, and a halt on the drift)."""

    async def scenario(s: Session) -> None:
        s.emu.set_faults(
            timeout_next=1, timeout_s=2.0, http_fault_path="/v5/order/create",
            rate_limit_next=18, rate_limit_reset_ms=50,
        )  # fmt: skip
        await s.submit(order("stall-1", 2, s.last_close() - 3000))
        await asyncio.sleep(2.5)  # the stalled create has been applied by now

    s = run(emulator, scenario, http_timeout_s=0.3)
    assert emulator.call(lambda st: [r.link_id for r in st.orders.values()]).count("stall-1") == 1
    assert not s.of(OrderRejected, "stall-1")
    assert s.venue.unresolved.get("stall-1") == "submit"  # reconciliation settles it


def test_5xx_before_apply_is_looked_up_then_sent_again(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(http_error_next=1, http_error_status=503, http_fault_path="/v5/order/c")
        await s.submit(order("e503", 2, s.last_close() - 3000))
        await s.until(lambda: bool(s.of(OrderAccepted, "e503")))

    s = run(emulator, scenario)
    assert s.venue.submissions["e503"] == 2  # the venue said it did not exist: sent again
    links = emulator.call(lambda st: [r.link_id for r in st.orders.values()])
    assert links.count("e503") == 1


def test_private_duplicates_delays_and_reordering_lose_and_double_nothing(big: Any) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(private_duplicate=True, private_reorder=True, private_delay_ms=30)
        close = s.last_close()
        for i in range(4):
            await s.submit(order(f"dup-{i}", 3000, close + 300, side="Buy" if i % 2 else "Sell"))
        await s.until(lambda: len(s.of(OrderAccepted)) == 4)
        for _ in range(3):
            await s.emu.step(1)
        await s.until(lambda: len(s.fills()) == len(s.emulator_execs()) > 4)
        await asyncio.sleep(0.3)  # any late duplicate would arrive now

    s = run(big, scenario)
    assert sorted(s.fills()) == sorted(s.emulator_execs())
    assert len({i for i, _ in s.fills()}) == len(s.fills())
    assert s.venue.converter is not None and s.venue.converter.duplicates > 0
    assert s.refused == []


def test_rate_limit_bursts_are_waited_out(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(rate_limit_next=3, rate_limit_reset_ms=300)
        close = s.last_close()
        await asyncio.gather(*(s.submit(order(f"rl-{i}", 2, close - 3000 - i)) for i in range(3)))
        await s.until(lambda: len(s.of(OrderAccepted)) == 3)

    s = run(emulator, scenario)
    assert s.venue.rest.stats.rate_limited == 3 and not s.of(OrderRejected)


@pytest.mark.parametrize(
    "burst", [30, pytest.param(100, marks=pytest.mark.soak)], ids=["short", "soak"]
)
def test_a_burst_of_orders_is_paced_under_the_limits(emulator_factory: Any, burst: int) -> None:
    """``burst`` creates at once (3x the venue's 10/s here, 10x soak): paced, never 10006."""
    emu = emulator_factory(balance=BIG)

    async def scenario(s: Session) -> None:
        close = s.last_close()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.gather(
            *(s.submit(order(f"b-{i:03d}", 2, close - 2000 - i)) for i in range(burst))
        )
        await s.until(lambda: len(s.of(OrderAccepted)) == burst)
        s.elapsed = loop.time() - t0  # type: ignore[attr-defined]

    s = run(emu, scenario)
    assert s.venue.rest.stats.rate_limited == 0  # the venue never had to say 10006
    assert not s.of(OrderRejected)
    assert s.elapsed >= (burst // 10 - 1) * 1.0  # type: ignore[attr-defined]  # at 10/s
    assert s.venue.rest.limiter.bucket("/v5/order/create").waits > 0


def test_skewed_server_clock_is_corrected_without_a_failed_order(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        close = s.last_close()
        await s.submit(order("sk-0", 2, close - 3000))
        s.emu.set_faults(clock_skew_ms=10_000)  # the venue jumps 10 s ahead
        await s.submit(order("sk-1", 2, close - 3001))
        await s.submit(order("sk-2", 2, close - 3002))
        await s.until(lambda: len(s.of(OrderAccepted)) == 3)

    s = run(emulator, scenario)
    assert not s.of(OrderRejected)
    assert s.venue.rest.stats.clock_resyncs >= 2  # start-up + the 10002
    offsets = [e.offset_ms for e in s.of(ClockOffset)]
    assert offsets[0] < 1000 and 9_000 <= offsets[-1] <= 11_000


def test_dropped_streams_reconnect_resubscribe_and_catch_up(big: Any) -> None:
    async def scenario(s: Session) -> None:
        close = s.last_close()
        await s.submit(order("rc-1", 3000, close + 300))
        await s.until(lambda: bool(s.of(OrderAccepted, "rc-1")))
        s.emu.drop_ws("private")
        await s.emu.step(1)  # fills happen while the private stream is down
        await s.until(lambda: ("private", 1) in s.reconnects)
        await s.until(lambda: len(s.fills()) == len(s.emulator_execs()) > 0)
        s.emu.drop_ws("public")
        await s.emu.step(2)  # candles closed while the public stream is down
        await s.until(lambda: ("public", 1) in s.reconnects)
        await s.emu.step(1)
        await s.until(lambda: len(s.emulator_execs()) == len(s.fills()))

    s = run(big, scenario, reconnect_base_s=0.4, reconnect_max_s=0.8)  # steps land in the gap
    assert s.venue.private is not None and s.venue.private.connections >= 2
    assert s.venue.public is not None and s.venue.public.connections >= 2
    assert sorted(s.fills()) == sorted(s.emulator_execs())
    candles = [e for e in s.events if isinstance(e, CandleClosed)]
    opens = [c.open_ms for c in candles]
    assert opens == sorted(set(opens))  # no candle twice, none out of order
    assert all(b - a == 300_000 for a, b in itertools.pairwise(opens))  # and none missing
    assert any(c.backfill for c in candles)  # the gap was filled over REST
    assert s.refused == []


def test_snapshot_pages_orders_and_executions(big: Any) -> None:
    snap_holder: list[Any] = []

    async def scenario(s: Session) -> None:
        close = s.last_close()
        for i in range(60):  # more than one page of open orders (limit 50)
            await s.submit(order(f"sn-{i:02d}", 2, close - 30_000 - i))
        await s.submit(order("sn-fill", 2))
        await s.until(lambda: len(s.of(OrderAccepted)) == 61)
        await s.emu.step(1)
        await s.until(lambda: bool(s.fills("sn-fill")))
        snap_holder.append(await s.venue.snapshot())

    s = run(big, scenario)
    (snap,) = snap_holder
    assert sorted(o.client_id for o in snap.open_orders) == [f"sn-{i:02d}" for i in range(60)]
    assert [(f.exec_id, f.qty) for f in snap.fills] == s.fills()
    (pos,) = snap.positions
    assert pos.qty == 2
    assert [b.coin for b in snap.balances] == ["USDT"]


def test_secret_never_reaches_logs_reprs_or_events(emulator: Any, caplog: Any) -> None:
    secret = emulator.api_secret

    async def scenario(s: Session) -> None:
        s.emu.set_faults(rate_limit_next=1, lose_reply_next=1, clock_skew_ms=5_000)
        await s.submit(order("sec-1", 2))
        await s.until(lambda: bool(s.of(OrderAccepted, "sec-1")))
        await s.venue.amend(AmendOrder(ts=0, client_id="nope", price=1))
        await s.until(lambda: bool(s.of(CommandRejected)))
        texts: Sequence[str] = [
            repr(s.venue),
            repr(s.venue.rest),
            repr(s.venue.rest._http),
            repr(s.venue.config),
            repr(s.venue.private),
            str(s.venue.rest._http),
            repr(s.venue._keys),
        ]
        assert all(secret not in t for t in texts)

    with caplog.at_level(logging.DEBUG):
        s = run(emulator, scenario)
    assert secret not in caplog.text
    assert '"op": "auth"' not in caplog.text  # no frame dump carrying the WS signature
    assert all(secret not in repr(e) for e in s.events)


@pytest.mark.parametrize("mode", ["close", "500"])
def test_lost_amend_and_cancel_replies_are_resolved_by_lookup(emulator: Any, mode: str) -> None:
    async def scenario(s: Session) -> None:
        far = s.last_close() - 30_000
        await s.submit(order("la-1", 2, far))
        await s.until(lambda: bool(s.of(OrderAccepted, "la-1")))
        s.emu.set_faults(lose_reply_next=1, lose_reply_mode=mode)
        await s.venue.amend(AmendOrder(ts=0, client_id="la-1", price=far - 10))
        await s.until(lambda: bool(s.of(OrderAmended, "la-1")))
        s.emu.set_faults(lose_reply_next=1, lose_reply_mode=mode)
        await s.venue.cancel(CancelOrder(ts=0, client_id="la-1"))
        await s.until(lambda: bool(s.of(OrderCancelled, "la-1")))
        await asyncio.sleep(0.2)

    s = run(emulator, scenario)
    (amd,) = s.of(OrderAmended, "la-1")
    assert amd.price == emulator.call(lambda st: st.by_client["la-1"].price)
    assert len(s.of(OrderCancelled, "la-1")) == 1
    assert not s.of(CommandRejected) and s.refused == []
    assert s.venue.rest.stats.calls["/v5/order/amend"] == 1  # found applied: not resent
    assert s.venue.rest.stats.calls["/v5/order/cancel"] == 1


def test_rejection_after_acceptance_ends_the_order_as_cancelled(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(reject_rate=1.0, reject_mode="async")
        await s.submit(order("ar-1", 2, s.last_close() - 30_000))
        await s.until(lambda: bool(s.of(OrderCancelled, "ar-1")))
        s.emu.set_faults(reject_rate=1.0, reject_mode="sync", reject_code=10001)
        await s.submit(order("sr-1", 2, s.last_close() - 30_000))
        await s.until(lambda: bool(s.of(OrderRejected, "sr-1")))

    s = run(emulator, scenario)
    assert s.of(OrderCancelled, "ar-1")[0].reason == "EC_Others"
    assert s.of(OrderRejected, "sr-1")[0].code == 10001
    assert s.venue.submissions["sr-1"] == 1  # a parameter error is never retried
    assert s.refused == []


def test_conditional_order_is_accepted_untriggered_then_triggered_and_filled(big: Any) -> None:
    async def scenario(s: Session) -> None:
        candles = s.emu.call(lambda st: st.candles[st.cursor : st.cursor + 30])
        assert min(c.low for c in candles[1:]) < candles[0].close - 50, "data should fall"
        await s.submit(order("cond-long", 10))
        await s.emu.step(1)  # the long must exist before a reduce-only stop may rest
        await s.until(lambda: bool(s.fills("cond-long")))
        close = s.last_close()
        stop = close - 50
        await s.submit(
            order(
                "cond-stop",
                10,
                side="Sell",
                trigger_price=stop,
                trigger_direction=2,
                reduce_only=True,
            )
        )
        await s.until(lambda: bool(s.of(OrderAccepted, "cond-stop")))
        for _ in range(30):
            await s.emu.step(1)
            if s.fills("cond-stop"):
                break
        await s.until(lambda: sum(q for _, q in s.fills("cond-stop")) == 10)

    s = run(big, scenario)
    (acc,) = s.of(OrderAccepted, "cond-stop")
    assert acc.status == "Untriggered"
    assert len(s.of(OrderTriggered, "cond-stop")) == 1
    kinds = [type(e).__name__ for e in s.events if getattr(e, "client_id", "") == "cond-stop"]
    assert kinds.index("OrderTriggered") < kinds.index("Fill")
    assert s.refused == []


def test_streams_dropped_mid_message_flow_lose_no_execution(big: Any) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(ws_drop_after_private=3, ws_drop_mode="abort")
        close = s.last_close()
        for i in range(3):
            await s.submit(order(f"ab-{i}", 2000, close + 300, side="Sell" if i % 2 else "Buy"))
        await s.until(lambda: len(s.of(OrderAccepted)) == 3)
        for _ in range(3):
            await s.emu.step(1)
        await s.until(lambda: ("private", 1) in s.reconnects)
        await s.until(lambda: len(s.fills()) == len(s.emulator_execs()) > 3)

    s = run(big, scenario)
    assert sorted(s.fills()) == sorted(s.emulator_execs())
    assert s.refused == []


def test_an_unreachable_venue_leaves_the_order_requested_not_rejected(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(http_error_next=1000, http_error_status=502, http_fault_path="/v5/order")
        await s.submit(order("dark-1", 2, s.last_close() - 30_000))
        s.emu.reset_faults()
        assert await s.venue.lookup("dark-1") is None  # 502 before applying: nothing there
        await asyncio.sleep(0.1)

    s = run(emulator, scenario, max_attempts=2)
    assert s.venue.unresolved == {"dark-1": "submit"}
    assert [e for e in s.events if getattr(e, "client_id", "") == "dark-1"] == []
    dark = s.book.get("dark-1")
    assert dark is not None and dark.status == "Requested"  # reconciliation's to resolve


def test_http_429_waits_a_window_then_succeeds(emulator: Any) -> None:
    async def scenario(s: Session) -> None:
        s.emu.set_faults(http_error_next=1, http_error_status=429, http_fault_path="/v5/order/c")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await s.submit(order("h429", 2, s.last_close() - 30_000))
        await s.until(lambda: bool(s.of(OrderAccepted, "h429")))
        assert loop.time() - t0 >= 1.0  # the endpoint was closed for a window

    s = run(emulator, scenario)
    assert s.venue.rest.stats.rate_limited == 1
    assert s.venue.submissions["h429"] == 1  # 429 is a refusal, not a lost reply


def test_attached_stop_and_target_are_armed_moved_and_removed_through_the_adapter(
    big: Any,
) -> None:
    async def scenario(s: Session) -> None:
        close = s.last_close()
        entry = order("tpsl-e", 10, stop_loss=close - 3_000, take_profit=close + 3_000)
        await s.submit(entry)
        await s.emu.step(1)  # the entry fills; the venue arms its levels
        await s.until(lambda: bool(s.of(OrderAccepted, "tpsl-e-sl")))
        await s.until(lambda: bool(s.of(OrderAccepted, "tpsl-e-tp")))
        moved = s.last_close() - 2_000
        await s.venue.amend(AmendOrder(ts=0, client_id="tpsl-e-sl", trigger_price=moved))
        await s.until(lambda: bool(s.of(OrderAmended, "tpsl-e-sl")))
        await s.venue.cancel(CancelOrder(ts=0, client_id="tpsl-e-tp"))
        await s.until(lambda: bool(s.of(OrderCancelled, "tpsl-e-tp")))

    s = run(big, scenario)
    assert s.refused == []
    acc = s.of(OrderAccepted, "tpsl-e-sl")[0]
    assert acc.status == "Untriggered"
    assert s.of(OrderAmended, "tpsl-e-sl")[-1].trigger_price > 0
    sl = s.book.get("tpsl-e-sl")
    assert sl is not None and sl.parent == "tpsl-e" and sl.reduce_only
    assert s.emu.call(lambda st: st.by_client["tpsl-e-sl"].trigger_price) == sl.trigger_price
    tp = s.book.get("tpsl-e-tp")
    assert tp is not None and tp.status == "Deactivated"
    wire = s.emu.call(lambda st: st.by_client["tpsl-e"])
    assert wire.stop_loss > 0 and wire.take_profit == wire.stop_loss + 6_000  # sent as given


def test_a_create_that_may_have_been_sent_before_a_crash_is_looked_up_before_any_resend(
    emulator: Any,
) -> None:
    """A stalled create applied at the venue after the daemon died: found, never sent twice."""

    async def scenario(s: Session) -> None:
        cmd = order("stall", 2, s.last_close() - 3000)
        await s.venue.submit(cmd)  # the order reached the venue ...
        await s.until(lambda: bool(s.of(OrderAccepted, "stall")))
        s.venue.submissions.clear()
        await s.venue.submit(cmd, maybe_sent=True)  # ... and is re-sent after a restart

    s = run(emulator, scenario)
    assert s.venue.submissions.get("stall", 0) == 0  # looked up, not sent again
    assert emulator.emulator.wire.creates["stall"] == 1


def test_a_closed_kline_starts_the_private_barrier_before_anyone_asks(emulator: Any) -> None:
    """The ping goes out when the kline arrives; the daemon's barrier then claims its
    pong instead of sending a second ping after its own wake-up."""
    pongs: list[int] = []

    async def scenario(s: Session) -> None:
        private = s.venue.private
        assert private is not None
        before = private.pongs
        await s.emu.step(1)
        await s.until(lambda: any(isinstance(e, CandleClosed) for e in s.events))
        await s.until(lambda: private.pongs == before + 1)  # nobody called the barrier yet
        assert await s.venue.private_barrier(1.0)
        pongs.append(private.pongs - before)
        assert await s.venue.private_barrier(1.0)  # nothing left to claim: a fresh ping
        pongs.append(private.pongs - before)

    run(emulator, scenario, ping_interval_s=60.0)  # no keep-alive pong in between
    assert pongs == [1, 2]


def test_a_cancelled_wait_for_the_next_event_loses_nothing() -> None:
    """The daemon's idle tick cancels its wait for the next event: the event that comes
    later is still delivered, and the feed ends only at close()."""
    venue = BybitVenue(
        BybitConfig(
            environment="emulator",
            rest_url="http://127.0.0.1:9",
            public_ws_url="ws://127.0.0.1:9/v5/public/linear",
            private_ws_url="ws://127.0.0.1:9/v5/private",
        ),
        ApiKeys("k", Secret("s"), "test"),
    )
    candle = CandleClosed(
        ts=60_000, symbol="BTCUSDT", timeframe="1m", open_ms=0, close_ms=60_000,
        open=1, high=1, low=1, close=1, volume=0,
    )  # fmt: skip

    async def go() -> list[Any]:
        feed = venue.events().__aiter__()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await anext(feed)
        venue._emit(candle)
        got = [await anext(feed)]
        await venue.close()
        for _ in range(2):
            with pytest.raises(StopAsyncIteration):
                await anext(feed)
        return got

    assert asyncio.run(go()) == [candle]
