"""``BybitVenue``: the ``adapters.protocol.Venue`` for Bybit v5 linear (demo, live, emulator).

Lifecycle: ``venue = await BybitVenue.connect(config, keys)`` fetches the instrument
spec (instruments-info), measures the clock offset (a ``ClockOffset`` event, refreshed
every ``clock_refresh_s``), opens the public kline stream and the private
order/execution/position/wallet stream, and returns once both are subscribed.
``events()`` then yields venue events and closed candles in arrival order.

Commands are answered through ``events()``:

* ``submit``: orderLinkId = ``client_id``. Success -> ``OrderAccepted``; a FATAL
  error (110007 balance, 10001 params, 110017 reduce-only, ...) -> ``OrderRejected``
  with Bybit's retCode. A reply lost to a timeout / connection error / 5xx is resolved
  by looking the orderLinkId up (``/v5/order/realtime``, twice, a back-off apart):
  found -> accepted; not found -> sent again (the venue says it does not exist). If
  the venue stays unreachable the order is left Requested (no event) and listed in
  ``unresolved`` for reconciliation: a guessed rejection could orphan a live order.
  110072 (duplicate orderLinkId) means an earlier attempt got through: looked up too.
* ``amend`` / ``cancel``: refused -> ``CommandRejected`` (e.g. 110001). An amend's
  new values are announced (``OrderAmended``) from the REST ack; a cancel's end
  (``OrderCancelled``) comes from the order stream. A lost reply is resolved by
  looking the order up: still open -> sent again, closed -> its status converted.

Reconnect: after every private-stream reconnect the venue catches up over REST
(executions since the newest one seen, minus a minute, and the status of every
order it believes open; duplicates are dropped by execId / order state), then calls
``on_reconnect(stream_name, n)`` -- the daemon's hook to run a full reconciliation
(``snapshot()`` + diff). After a public reconnect, missed closed candles are
back-filled from ``/v5/market/kline`` (marked ``backfill=True``).

What the daemon asks beyond commands and events is here too, in engine units, never
as Bybit dicts: ``recent_candles(n)`` (warm-up), ``candles_since(open_ms)`` (back-fill;
both through the one kline pager, ``adapters.bybit.klines``), ``final_status(client_id)``
(reconciliation), ``rate_limit_waits()``, ``now_ms()`` and ``name``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Final

from adapters.bybit import batch
from adapters.bybit.clock import ExchangeClock
from adapters.bybit.config import BybitConfig
from adapters.bybit.convert import (
    StreamConverter,
    balance_snapshots,
    candles_from_rest_kline,
    execution_event,
    instrument_spec,
    interval_ms,
    open_order,
    position_snapshot,
)
from adapters.bybit.errors import (
    ApiError,
    BybitError,
    KeysRefused,
    RetriesExhausted,
    TransportError,
)
from adapters.bybit.keys import ApiKeys
from adapters.bybit.klines import KlinePager
from adapters.bybit.rest import BybitRest
from adapters.bybit.retry import DUPLICATE_LINK_ID, Action, Backoff, classify
from adapters.bybit.trade_ws import OPS, TradeSocket
from adapters.bybit.wire import USES, WireTap, convert_ws
from adapters.bybit.ws import WsStream
from adapters.protocol import FinalOrder, OpenOrder, VenueSnapshot
from engine.events import (
    AmendOrder,
    CancelOrder,
    CandleClosed,
    CommandRejected,
    Event,
    Fill,
    FundingPaid,
    InstrumentSpec,
    Liquidated,
    OrderRejected,
    SubmitOrder,
)
from engine.instrument import Instrument
from engine.orders import armed_purpose

log = logging.getLogger(__name__)

ReconnectHook = Callable[[str, int], Awaitable[None] | None]
ORDER_NOT_FOUND: Final = 110001
OPEN: Final = frozenset({"New", "PartiallyFilled", "Untriggered", "Triggered"})
WEEK_MS: Final = 7 * 86_400_000
RETENTION_MS: Final = 730 * 86_400_000
CATCH_UP_MARGIN_MS: Final = 60_000
FINAL: Final = frozenset({"Filled", "Cancelled", "Rejected", "Deactivated"})
_CLOSED: Final = object()


class BybitVenue:
    """Bybit v5 linear perpetuals behind the engine's venue protocol."""

    def __init__(
        self,
        config: BybitConfig,
        keys: ApiKeys,
        *,
        on_reconnect: ReconnectHook | None = None,
        clock: ExchangeClock | None = None,
        tap: WireTap | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or ExchangeClock()
        self.rest = BybitRest(config, keys, self.clock)
        #: what the venue sent and what it became (``adapters.bybit.wire``); off by default
        self.tap = tap or WireTap(enabled=False)
        if self.tap.enabled:
            self.rest.on_body = self._on_body
        self.on_reconnect = on_reconnect
        self._keys = keys
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._backoff = Backoff(config.backoff_base_s, config.backoff_max_s, config.jitter_seed + 1)
        self._tasks: list[asyncio.Task[Any]] = []
        self._closed = False
        self.spec: InstrumentSpec | None = None
        self.instrument: Instrument | None = None
        self.converter: StreamConverter | None = None
        self.public: WsStream | None = None
        self.private: WsStream | None = None
        self.trade: TradeSocket | None = None  # orders over the Trade API when it is up
        #: the private-stream ping sent when the last closed kline arrived (``private_barrier``)
        self._early_barrier: asyncio.Future[bool] | None = None
        self.submissions: dict[str, int] = {}  # create requests sent per client id
        #: client ids whose submission could not be confirmed either way (venue unreachable);
        #: no event was emitted for them -- the daemon's reconciliation must look them up.
        self.unresolved: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"BybitVenue({self.config.environment}, {self.config.symbol})"

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        config: BybitConfig,
        keys: ApiKeys,
        *,
        on_reconnect: ReconnectHook | None = None,
        streams: bool = True,
    ) -> BybitVenue:
        venue = cls(config, keys, on_reconnect=on_reconnect)
        await venue.start(streams=streams)
        return venue

    async def start(self, streams: bool = True, timeout_s: float = 15.0) -> None:
        self.rest.on_clock = self._on_clock  # every offset measured: a ClockOffset event
        await self.rest.sync_clock()
        self.spec = await self.fetch_instrument(self.config.symbol)
        self.instrument = Instrument(self.spec)
        self.converter = StreamConverter(
            {self.spec.symbol: self.instrument}, self.config.exec_dedupe_size
        )
        self.tap.start_run(self.clock.now_ms(), self.spec, self.config.exec_dedupe_size)
        self._tasks.append(asyncio.create_task(self._clock_loop(), name="bybit-clock"))
        if not streams:
            return
        _rest, pub_url, prv_url = self.config.urls()
        local = self.config.environment == "emulator"
        topic = f"kline.{self.config.interval}.{self.config.symbol}"
        self.public = WsStream(
            "public",
            pub_url,
            [topic],
            self._on_ws,
            clock=self.clock,
            on_connected=self._public_connected,
            ping_interval_s=self.config.ping_interval_s,
            backoff=self._stream_backoff(2),
            use_proxy=not local,
            on_raw=self._on_raw if self.tap.enabled else None,
            urgent=self._closing_kline,
        )
        self.private = WsStream(
            "private",
            prv_url,
            ["order", "execution", "position", "wallet"],
            self._on_ws,
            keys=self._keys,
            clock=self.clock,
            on_connected=self._private_connected,
            ping_interval_s=self.config.ping_interval_s,
            backoff=self._stream_backoff(3),
            use_proxy=not local,
            on_raw=self._on_raw if self.tap.enabled else None,
        )
        self.public.start()
        self.private.start()
        if self.config.trade_url():
            self.trade = TradeSocket(
                self.config.trade_url(),
                self._keys,
                self.clock,
                self.rest.limiter,
                recv_window_ms=self.config.recv_window_ms,
                timeout_s=self.config.http_timeout_s,
                ping_interval_s=self.config.ping_interval_s,
                backoff=self._stream_backoff(4),
                use_proxy=not local,
            )
            if self.tap.enabled:
                self.trade.on_frame = self._on_trade_frame
            self.trade.start()

        public, private, trade = self.public, self.private, self.trade

        async def subscribed() -> None:
            await public.subscribed.wait()
            await private.subscribed.wait()
            if trade is not None:
                await trade.ready.wait()

        both: asyncio.Future[Any] = asyncio.ensure_future(subscribed())
        refused: asyncio.Future[Any] = asyncio.ensure_future(self.private.refused.wait())
        done, _ = await asyncio.wait(
            {both, refused}, timeout=timeout_s, return_when="FIRST_COMPLETED"
        )
        for waiter in (both, refused):
            waiter.cancel()
        if refused in done:  # wrong keys do not get better with retries: say so at once
            await self.close()
            raise KeysRefused(
                f"the venue refused the API key ({self.private.refusal}); check BYBIT_API_KEY "
                "and BYBIT_API_SECRET or --keys (demo keys are made on Bybit's demo site)"
            )
        if both not in done:
            await self.close()
            raise TransportError(
                "streams",
                f"not subscribed within {timeout_s} s (public {self.public.subscribed.is_set()}"
                f", private {self.private.subscribed.is_set()}); check the URLs and keys",
            )

    def _stream_backoff(self, salt: int) -> Backoff:
        c = self.config
        return Backoff(c.reconnect_base_s, c.reconnect_max_s, c.jitter_seed + salt)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for stream in (self.public, self.private):
            if stream is not None:
                await stream.stop()
        if self.trade is not None:
            await self.trade.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._queue.put_nowait(_CLOSED)

    def events(self) -> AsyncIterator[Event]:
        """The venue's events in arrival order, until ``close()``. Awaiting the next one
        may be cancelled (a timeout) without losing an event or ending the iterator."""
        return _Feed(self._queue)

    def _emit(self, ev: Event | None) -> None:
        if ev is not None:
            self._queue.put_nowait(ev)

    def _emit_all(self, evs: list[Event]) -> None:
        for ev in evs:
            self._queue.put_nowait(ev)

    def _conv(self) -> StreamConverter:
        if self.converter is None:
            raise BybitError("venue not started: call start() / connect() first")
        return self.converter

    def _inst(self) -> Instrument:
        if self.instrument is None:
            raise BybitError("venue not started: call start() / connect() first")
        return self.instrument

    async def _clock_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.clock_refresh_s)
            try:
                await self.rest.sync_clock()
            except BybitError as exc:
                log.warning("clock refresh failed: %s", exc)

    async def fetch_instrument(self, symbol: str) -> InstrumentSpec:
        result = await self.rest.call(
            "/v5/market/instruments-info", {"category": self.config.category, "symbol": symbol}
        )
        for row in result.get("list") or []:
            if row.get("symbol") == symbol:
                return instrument_spec(row)
        raise BybitError(f"instrument {symbol} not listed by instruments-info")

    # -- streams -------------------------------------------------------------

    def _on_ws(self, msg: dict[str, Any]) -> None:
        events, why = convert_ws(self._conv(), msg)
        self.tap.produced(self.tap.current, events, why)
        self._emit_all(events)

    def _closing_kline(self, msg: dict[str, Any]) -> bool:
        """The public stream's ``urgent`` hook: a confirmed kline starts the private-stream
        barrier at once, before the frame is converted and the candle delivered, so its
        round trip overlaps that work and the daemon's wake-up instead of following them.
        A newer kline replaces an unclaimed one (its ping is later, so it covers at least
        as much)."""
        private = self.private
        if private is None or not str(msg.get("topic", "")).startswith("kline."):
            return False
        data = msg.get("data")
        if not isinstance(data, list) or not any(
            isinstance(item, dict) and item.get("confirm") is True for item in data
        ):
            return False
        if self._early_barrier is not None:
            private.forget(self._early_barrier)
        self._early_barrier = private.ping_soon()
        return self._early_barrier is not None

    # -- wire capture (adapters.bybit.wire) ------------------------------------

    def _on_raw(self, stream: str, raw: str | bytes, decoded: bool) -> None:
        self.tap.ws_frame(stream, raw, self.clock.now_ms(), decoded)

    def _on_body(self, path: str, params: Any, body: dict[str, Any], ok: bool) -> None:
        self.tap.rest_frame(path, dict(params or {}), body, self.clock.now_ms(), ok)

    def _on_trade_frame(self, path: str, params: Any, raw: str, recv_ms: int) -> None:
        self.tap.trade_frame(path, dict(params or {}), raw, recv_ms)

    @property
    def last_write_at(self) -> float:
        """``perf_counter()`` when sending the last Trade API order request returned (0: none;
        the bench's trace)."""
        return self.trade.last_write if self.trade is not None else 0.0

    @property
    def pipelined(self) -> bool:
        """Orders go over the Trade API now (one socket: replies in order)."""
        return self.trade is not None and self.trade.ready.is_set()

    async def _write(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """An order write: over the Trade API while its socket is up, else REST; either
        way with the same retries, and a lost reply raised for the caller's lookup."""
        trade = self.trade
        ready = trade is not None and trade.ready.is_set() and path in OPS
        via = trade.once if ready and trade is not None else None
        return await self.rest.call(path, params, via=via)

    def _on_clock(self, ev: Event) -> None:
        self._local([ev], "clock offset, measured locally")

    def _use(
        self, how: str, frames: list[int], extra: dict[str, Any], bodies: list[dict[str, Any]]
    ) -> list[Event]:
        """Convert REST bodies by the named use, recording it; emit nothing."""
        events = USES[how](self._conv(), bodies, extra)
        self.tap.use(how, frames, extra, events)
        return events

    def _local(self, events: list[Event], why: str) -> None:
        """Emit events the adapter made without venue bytes (kept as made)."""
        self.tap.local(events, why)
        self._emit_all(events)

    async def _private_connected(self, n: int) -> None:
        if n == 0:
            return
        log.info("private stream reconnected (%d): catching up over REST", n)
        await self.catch_up()
        await self._fire_hook("private", n)

    async def _public_connected(self, n: int) -> None:
        if n == 0:
            return
        try:
            await self.backfill_candles()
        except BybitError as exc:
            log.warning("candle backfill after reconnect failed: %s", exc)
        await self._fire_hook("public", n)

    async def _fire_hook(self, stream: str, n: int) -> None:
        if self.on_reconnect is None:
            return
        result = self.on_reconnect(stream, n)
        if result is not None:
            await result

    async def catch_up(self) -> None:
        """Fetch what the private stream may have missed and feed it through the converter
        (so each execution / transition still comes out exactly once)."""
        conv, c = self._conv(), self.config
        start = max(0, conv.last_exec_ms - CATCH_UP_MARGIN_MS) if conv.last_exec_ms else None
        params: dict[str, Any] = {"category": c.category, "symbol": c.symbol, "limit": 100}
        if start is not None:
            params["startTime"] = start
        with self.tap.collect() as got:
            rows = await self.rest.pages("/v5/execution/list", params)
        self._emit_all(self._use("executions", got, {}, [_body({"list": rows})]))
        for client_id in conv.open_client_ids():
            with self.tap.collect() as got:
                found = await self.lookup(client_id)
            if found is not None:
                extra = {"client_id": client_id}
                self._emit_all(self._use("order_row", got, extra, [_body({"list": [found]})]))

    def candles_logged_up_to(self, open_ms: int) -> None:
        """Tell the venue the consumer's log already holds candles up to ``open_ms``, so
        ``backfill_candles`` (and the one after every public reconnect) starts after it."""
        c = self.config
        extra = {"symbol": c.symbol, "timeframe": c.timeframe, "open_ms": open_ms}
        self._use("seen_candle", [], extra, [])

    async def backfill_candles(self) -> None:
        """Emit the closed candles after the newest one logged (``backfill=True``)."""
        conv, c = self._conv(), self.config
        last = conv.last_candle_open(self._inst().symbol, c.timeframe)
        if last is None:
            return
        candles = await self.candles_since(last + 1)
        # Paged over the one kline pager; its REST pages are kept as frames, the candles
        # as made (``verify --wire`` says so rather than re-deriving them).
        self._local(conv.backfill(candles), "candle back-fill over the kline pager")

    async def candles_since(self, open_ms: int) -> list[CandleClosed]:
        """Closed candles opened at or after ``open_ms``, oldest first (``backfill=True``)."""
        return await self._klines(KlinePager(start_ms=open_ms))

    async def recent_candles(self, n: int) -> list[CandleClosed]:
        """The ``n`` most recent closed candles, oldest first (``backfill=True``)."""
        return await self._klines(KlinePager(n=n)) if n > 0 else []

    async def _klines(self, pager: KlinePager) -> list[CandleClosed]:
        """Run the adapter's one kline pager against ``/v5/market/kline``."""
        inst, c = self._inst(), self.config
        base = {"category": c.category, "symbol": c.symbol, "interval": c.interval}
        while (params := pager.request()) is not None:
            result = await self.rest.call("/v5/market/kline", {**base, **params})
            pager.add(result.get("list") or [])
        rows = pager.rows(interval_ms(c.interval), self.clock.now_ms())
        return candles_from_rest_kline(inst, {"interval": c.interval, "list": rows[::-1]})

    def now_ms(self) -> int:
        """The venue's clock (local clock plus the measured offset), ms."""
        return int(self.clock.now_ms())

    @property
    def name(self) -> str:
        """The ``SessionStarted.venue`` name of this venue."""
        return self.config.venue_name

    def rate_limit_waits(self) -> int:
        """Requests that waited for the rate limiter so far."""
        return int(self.rest.limiter.total_waits())

    async def final_status(self, client_id: str) -> FinalOrder:
        """The venue's last word on an order that is no longer open (reconciliation)."""
        return final_order(await self.lookup(client_id))

    # -- commands ------------------------------------------------------------

    async def submit(self, cmd: SubmitOrder, *, maybe_sent: bool = False) -> None:
        """Create ``cmd``'s order. ``maybe_sent``: it may have reached the venue before a
        crash; it is looked up first (with a wait: creation is asynchronous at Bybit) and
        sent only if not found -- the same lookup that resolves a lost reply, whichever
        transport carries the order."""
        params, ack = self._create_params(cmd)
        c = self.config
        if maybe_sent and await self._found(cmd, ack, 0):
            return
        # After an attempt whose fate is unknown (reply lost), a later refusal proves nothing
        # about it: the first request may still be applied (a create stalled at the venue).
        ambiguous = False
        for attempt in range(c.max_attempts):
            self.submissions[cmd.client_id] = self.submissions.get(cmd.client_id, 0) + 1
            try:
                with self.tap.collect() as got:
                    result = await self._write("/v5/order/create", params)
            except ApiError as exc:
                if exc.code != DUPLICATE_LINK_ID:
                    if ambiguous:
                        break
                    extra = {"client_id": cmd.client_id, "ts": self.clock.now_ms()}
                    body = {"retCode": exc.code, "retMsg": exc.message}
                    self._emit_all(self._use("reject", got, extra, [body]))
                    return
                log.info("%s: duplicate orderLinkId, an earlier attempt got through", cmd.client_id)
            except RetriesExhausted as exc:
                if ambiguous:
                    break
                self._unsent(cmd, exc)
                return
            except TransportError as exc:
                if classify(exc) is Action.FATAL:  # 4xx: refused before anything happened
                    if ambiguous:
                        break
                    self._unsent(cmd, exc)
                    return
                ambiguous = True
                log.warning("%s: create reply lost (%s); looking it up", cmd.client_id, exc)
            else:
                extra = {**ack, "ts": self.clock.now_ms()}
                self._emit_all(self._use("ack_submit", got, extra, [_body(result)]))
                return
            if await self._found(cmd, ack, attempt):
                return
            log.warning("%s: not at the venue after a lost reply; sending again", cmd.client_id)
        # Every attempt ended ambiguously, or a resend was refused after one that did: the
        # order may exist. Saying "rejected" could orphan a live order, so it stays
        # Requested for reconciliation to resolve.
        self.unresolved[cmd.client_id] = "submit"
        log.error("%s: submission not confirmed", cmd.client_id)

    def _unsent(self, cmd: SubmitOrder, exc: BybitError) -> None:
        """A create the venue could not be asked (retries used up) or refused by its HTTP
        status before anything happened: rejected."""
        if isinstance(exc, RetriesExhausted):
            code = exc.last.code if isinstance(exc.last, ApiError) else 0
            self._local([self._rejected(cmd, f"not sent: {exc.last}", code)], "not sent")
        else:
            self._local([self._rejected(cmd, str(exc), 0)], "refused by HTTP status")

    async def submit_batch(self, cmds: Sequence[SubmitOrder]) -> None:
        """Create independent orders in ``create-batch`` requests (``adapters.bybit.batch``)."""
        await batch.submit_batch(self, cmds)

    async def amend_batch(self, cmds: Sequence[AmendOrder]) -> None:
        """Independent amends in ``amend-batch`` requests (``adapters.bybit.batch``)."""
        await batch.amend_batch(self, cmds)

    async def cancel_batch(self, cmds: Sequence[CancelOrder]) -> None:
        """Independent cancels in ``cancel-batch`` requests (``adapters.bybit.batch``)."""
        await batch.cancel_batch(self, cmds)

    def _create_params(self, cmd: SubmitOrder) -> tuple[dict[str, Any], dict[str, Any]]:
        """``cmd`` as ``/v5/order/create`` params, and the inputs of its ``ack_submit`` use."""
        inst, c = self._inst(), self.config
        params: dict[str, Any] = {
            "category": c.category,
            "symbol": cmd.symbol,
            "side": cmd.side,
            "orderType": cmd.order_type,
            "qty": inst.lots_to_qty(cmd.qty),
            "orderLinkId": cmd.client_id,
            "positionIdx": 0,
        }
        if cmd.order_type == "Limit":
            params["price"] = inst.ticks_to_price(cmd.price)
            params["timeInForce"] = cmd.time_in_force
        if cmd.reduce_only:
            params["reduceOnly"] = True
        if cmd.trigger_price:
            params["triggerPrice"] = inst.ticks_to_price(cmd.trigger_price)
            params["triggerDirection"] = cmd.trigger_direction
            params["triggerBy"] = "LastPrice"
        if cmd.take_profit or cmd.stop_loss:  # attached: the whole position, last price
            params["tpslMode"] = "Full"
        if cmd.take_profit:
            params["takeProfit"] = inst.ticks_to_price(cmd.take_profit)
            params["tpTriggerBy"] = "LastPrice"
        if cmd.stop_loss:
            params["stopLoss"] = inst.ticks_to_price(cmd.stop_loss)
            params["slTriggerBy"] = "LastPrice"
        conditional = cmd.trigger_price > 0
        ack = {
            "client_id": cmd.client_id,
            "conditional": conditional,
            "qty": cmd.qty,
            "price": cmd.price,
            "trigger": cmd.trigger_price,
        }
        return params, ack

    async def _found(self, cmd: SubmitOrder, ack: dict[str, Any], attempt: int) -> bool:
        """Look ``cmd``'s orderLinkId up (twice, a back-off apart); found -> accepted."""
        with self.tap.collect() as got:
            row = await self._find(cmd.client_id, attempt)
        if row is None:
            return False
        extra = {**ack, "ts": self.clock.now_ms(), "lookup": True}
        self._emit_all(self._use("ack_submit", got, extra, [_body({"list": [row]})]))
        return True

    async def _find(self, client_id: str, attempt: int) -> dict[str, Any] | None:
        """Look an orderLinkId up twice (creation is asynchronous at Bybit)."""
        for i in range(2):
            try:
                row = await self.lookup(client_id)
            except BybitError as exc:
                log.warning("%s: lookup failed: %s", client_id, exc)
                row = None
            if row is not None:
                return row
            if i == 0:
                await asyncio.sleep(self._backoff.delay(attempt))
        return None

    def _rejected(self, cmd: SubmitOrder, reason: str, code: int) -> OrderRejected:
        return OrderRejected(
            ts=self.clock.now_ms(), client_id=cmd.client_id, reason=reason, code=code
        )

    async def lookup(self, client_id: str) -> dict[str, Any] | None:
        """The venue's order row for an orderLinkId (open or recently closed), or None."""
        c = self.config
        result = await self.rest.call(
            "/v5/order/realtime",
            {"category": c.category, "symbol": c.symbol, "orderLinkId": client_id},
        )
        for row in result.get("list") or []:
            if isinstance(row, dict) and row.get("orderLinkId") == client_id:
                return row
        return None

    def _trading_stop(self, purpose: str, level: str) -> dict[str, Any]:
        """``/v5/position/trading-stop`` params moving (or with "0" removing) the position's
        stop (``purpose="stop"``) or target: how an armed attached level is changed."""
        key, by = (
            ("stopLoss", "slTriggerBy") if purpose == "stop" else ("takeProfit", "tpTriggerBy")
        )
        c = self.config
        base = {"category": c.category, "symbol": c.symbol, "positionIdx": 0, "tpslMode": "Full"}
        return {**base, key: level, by: "LastPrice"}

    async def amend(self, cmd: AmendOrder, *, maybe_sent: bool = False) -> None:
        """Amend ``cmd``'s order (an armed TP/SL: move its level). ``maybe_sent``: the
        amend may have reached the venue (a lost batch reply): the order is looked up first."""
        inst = self._inst()
        purpose = armed_purpose(cmd.client_id)
        if purpose:  # an armed TP/SL: only its trigger moves (its size is the position's)
            if cmd.trigger_price and await self._command(
                "/v5/position/trading-stop",
                "amend",
                cmd.client_id,
                self._trading_stop(purpose, inst.ticks_to_price(cmd.trigger_price)),
            ):
                self._amended(
                    AmendOrder(ts=cmd.ts, client_id=cmd.client_id, trigger_price=cmd.trigger_price)
                )
            return
        params = self._amend_params(cmd)
        if await self._command("/v5/order/amend", "amend", cmd.client_id, params, maybe_sent):
            self._amended(cmd)

    def _amend_params(self, cmd: AmendOrder) -> dict[str, Any]:
        """``cmd`` as ``/v5/order/amend`` params (only the values it changes)."""
        inst, c = self._inst(), self.config
        params: dict[str, Any] = {
            "category": c.category,
            "symbol": c.symbol,
            "orderLinkId": cmd.client_id,
        }
        if cmd.qty:
            params["qty"] = inst.lots_to_qty(cmd.qty)
        if cmd.price:
            params["price"] = inst.ticks_to_price(cmd.price)
        if cmd.trigger_price:
            params["triggerPrice"] = inst.ticks_to_price(cmd.trigger_price)
        return params

    def _amended(self, cmd: AmendOrder) -> None:
        """The venue took ``cmd``: its new values announced (``OrderAmended``)."""
        extra = {
            "client_id": cmd.client_id,
            "ts": self.clock.now_ms(),
            "qty": cmd.qty,
            "price": cmd.price,
            "trigger": cmd.trigger_price,
        }
        self._emit_all(self._use("ack_amend", [], extra, []))

    async def cancel(self, cmd: CancelOrder, *, maybe_sent: bool = False) -> None:
        """Cancel ``cmd``'s order (an armed TP/SL: remove it). ``maybe_sent`` as ``amend``."""
        purpose = armed_purpose(cmd.client_id)
        if purpose:  # an armed TP/SL is removed by setting its level to "0"
            params = self._trading_stop(purpose, "0")
            await self._command("/v5/position/trading-stop", "cancel", cmd.client_id, params)
            return
        params = self._cancel_params(cmd)
        await self._command("/v5/order/cancel", "cancel", cmd.client_id, params, maybe_sent)

    def _cancel_params(self, cmd: CancelOrder) -> dict[str, Any]:
        c = self.config
        return {"category": c.category, "symbol": c.symbol, "orderLinkId": cmd.client_id}

    async def _command(
        self,
        path: str,
        name: str,
        client_id: str,
        params: dict[str, Any],
        maybe_sent: bool = False,
    ) -> bool:
        """Send an amend/cancel; True when the venue accepted it. Refusals become
        ``CommandRejected``; a lost reply (or ``maybe_sent``) is resolved by looking the
        order up before it is sent (again)."""
        lost = maybe_sent
        for attempt in range(self.config.max_attempts):
            if lost:
                outcome = await self._resolve_command(name, client_id, params, attempt)
                if outcome is not None:
                    return outcome
            try:
                with self.tap.collect() as got:
                    await self._write(path, params)
                return True
            except (ApiError, RetriesExhausted, TransportError) as exc:
                if isinstance(exc, TransportError) and classify(exc) is not Action.FATAL:
                    log.warning("%s %s: reply lost (%s); looking it up", name, client_id, exc)
                    lost = True
                    continue
                if isinstance(exc, ApiError):
                    now = self.clock.now_ms()
                    extra: dict[str, Any] = {"client_id": client_id, "ts": now, "command": name}
                    body = {"retCode": exc.code, "retMsg": exc.message}
                    self._emit_all(self._use("command_rejected", got, extra, [body]))
                    return False
                self._not_confirmed(name, client_id, exc)
                return False
        if lost:  # the last attempt's reply was lost too
            outcome = await self._resolve_command(name, client_id, params, self.config.max_attempts)
            if outcome is not None:
                return outcome
        self._local_rejected(name, client_id)
        return False

    async def _resolve_command(
        self, name: str, client_id: str, params: dict[str, Any], attempt: int
    ) -> bool | None:
        """After a lost reply: the amend/cancel's outcome from the order's row, or None when
        the order is open and unchanged (the command did not get through: send it again)."""
        with self.tap.collect() as got:
            row = await self._find(client_id, attempt)
        if row is None or str(row.get("orderStatus")) not in OPEN:
            return self._command_gone(name, client_id, row, got)
        if name == "amend" and _amend_applied(self._inst(), row, params):
            return True
        return None

    def _not_confirmed(self, name: str, client_id: str, exc: BybitError) -> None:
        """A command the venue could not be asked (retries used up, an HTTP refusal)."""
        err = exc.last if isinstance(exc, RetriesExhausted) else exc
        code = err.code if isinstance(err, ApiError) else 0
        reason = err.message if isinstance(err, ApiError) else str(err)
        rejected = CommandRejected(
            ts=self.clock.now_ms(), client_id=client_id, command=name, reason=reason, code=code
        )
        self._local([rejected], "not confirmed")

    def _local_rejected(self, name: str, client_id: str) -> None:
        self._local(
            [
                CommandRejected(
                    ts=self.clock.now_ms(),
                    client_id=client_id,
                    command=name,
                    reason="venue unreachable: command not confirmed",
                    code=0,
                )
            ],
            "venue unreachable",
        )

    def _command_gone(
        self, name: str, client_id: str, row: dict[str, Any] | None, frames: list[int]
    ) -> bool:
        """An amend/cancel whose order is closed (or unknown) at the venue."""
        if row is not None:
            extra = {"client_id": client_id}
            self._emit_all(self._use("order_row", frames, extra, [_body({"list": [row]})]))
            if name == "cancel" and row.get("orderStatus") != "Filled":
                return True  # it is gone: the cancel (or something else) ended it
        gone = CommandRejected(
            ts=self.clock.now_ms(),
            client_id=client_id,
            command=name,
            reason="order not open",
            code=ORDER_NOT_FOUND,
        )
        self._local([gone], "order not open at the venue")
        return False

    # -- reconciliation ------------------------------------------------------

    async def private_barrier(self, timeout_s: float = 1.0) -> bool:
        """Wait until what the private stream sent before the last closed kline arrived
        (the ping started then), or else before now, is in ``events()``'s queue; False
        if no pong within ``timeout_s`` of this call."""
        if self.private is None:
            return False
        early, self._early_barrier = self._early_barrier, None
        return await self.private.await_pong(early or self.private.ping_soon(), timeout_s)

    def drain_ready(self) -> list[Event]:
        """The events already queued, without waiting (the end-of-stream mark stays)."""
        out: list[Event] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _CLOSED:
                self._queue.put_nowait(item)
                break
            out.append(item)
        return out

    def release_held(self) -> None:
        """Emit terminal order events still waiting for fills (call after a
        reconciliation has appended whatever executions were missing)."""
        self._emit_all(self._use("release_held", [], {}, []))

    async def snapshot(self, since_ms: int | None = None) -> VenueSnapshot:
        inst, c = self._inst(), self.config
        now = self.clock.now_ms()
        base = {"category": c.category, "symbol": c.symbol}
        orders = await self.rest.pages("/v5/order/realtime", {**base, "limit": 50})
        open_orders: list[OpenOrder] = [
            open_order(inst, r) for r in orders if str(r.get("orderStatus")) in OPEN
        ]
        positions = [
            position_snapshot(inst, r, now)
            for r in await self.rest.pages("/v5/position/list", {**base, "limit": 50})
            if r.get("symbol") == c.symbol
        ]
        wallet = await self.rest.call("/v5/account/wallet-balance", {"accountType": "UNIFIED"})
        balances = [b for acct in wallet.get("list") or [] for b in balance_snapshots(acct, now)]
        fills: list[Fill] = []
        funding: list[FundingPaid] = []
        liquidations: list[Liquidated] = []
        rows: list[dict[str, Any]] = []
        if since_ms is None:  # the venue's default window: the last 7 days
            rows = await self.rest.pages("/v5/execution/list", {**base, "limit": 100})
        else:  # the endpoint serves at most 7 days per query; Bybit keeps about 2 years
            start = max(since_ms, now - RETENTION_MS)
            while start <= now:
                end = min(now, start + WEEK_MS - 1)
                query = {**base, "startTime": start, "endTime": end, "limit": 100}
                rows.extend(await self.rest.pages("/v5/execution/list", query))
                start = end + 1
        seen: set[str] = set()
        for row in rows:
            exec_id = str(row.get("execId", ""))
            if exec_id in seen:
                continue
            seen.add(exec_id)
            ev = execution_event(inst, row)
            if isinstance(ev, Fill):
                fills.append(ev)
            elif isinstance(ev, FundingPaid):
                funding.append(ev)
            elif isinstance(ev, Liquidated):
                liquidations.append(ev)
        fills.sort(key=lambda f: (f.ts, f.exec_id))
        funding.sort(key=lambda f: (f.ts, f.exec_id))
        liquidations.sort(key=lambda f: (f.ts, f.exec_id))
        return VenueSnapshot(
            ts=now,
            open_orders=open_orders,
            positions=positions,
            balances=balances,
            fills=fills,
            funding=funding,
            liquidations=liquidations,
            since_ms=since_ms,
        )


class _Feed:
    """``BybitVenue.events()``: ``__anext__`` is a plain ``Queue.get``, so cancelling it
    (the daemon's idle timeout) loses nothing, where an async generator would end."""

    __slots__ = ("_queue",)

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self._queue = queue

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(item)  # every later call ends too
            raise StopAsyncIteration
        event: Event = item
        return event


def _body(result: dict[str, Any]) -> dict[str, Any]:
    """A REST result in its envelope (what the wire log keeps and ``USES`` read)."""
    return {"retCode": 0, "result": result}


def _amend_applied(inst: Instrument, row: dict[str, Any], params: dict[str, Any]) -> bool:
    """Does the venue's order already carry every value the amend asked for?"""
    for key in ("qty", "price", "triggerPrice"):
        if key in params:
            want, have = str(params[key]), str(row.get(key, ""))
            try:
                if Decimal(want) != Decimal(have or "0"):
                    return False
            except ArithmeticError:
                return False
    return True


def final_order(found: dict[str, Any] | None) -> FinalOrder:
    """A Bybit order row (or None: unknown to the venue) as its final status."""
    if not found:
        return FinalOrder("")
    status = str(found.get("orderStatus", ""))
    if status == "PartiallyFilledCanceled":
        status = "Cancelled"
    if status not in FINAL:
        status = "Cancelled" if status else ""
    reason = str(found.get("rejectReason") or found.get("cancelType") or "")
    return FinalOrder(status, str(found.get("orderId", "")), reason)
