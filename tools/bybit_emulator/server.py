"""The emulator process: one aiohttp app (REST, both WS paths, control endpoints) on 127.0.0.1.

``Emulator`` owns the state, the WS hub, the faults and the candle clock. It runs inside an
asyncio loop: ``await emu.start()`` binds the port (0 = ephemeral) and returns the URLs;
``await emu.step(n)`` plays ``n`` candles; with ``speed > 0`` a background task plays
``speed`` candles per second by itself (the mid-bar ``confirm=false`` kline goes out halfway
through each period, the fills and the ``confirm=true`` kline at its end).

Per candle, in this order: kline ``confirm=false`` (the bar halfway, see ``wire.partial_bar``),
the matching engine's events for the bar (private order/execution/position/wallet messages),
then -- once those are written to every private socket (``Hub.flush_private``) and
``fill_settle_ms`` has passed -- kline ``confirm=true``. So a client normally sees a bar's fills
before its close, as a backtest folds them. Across two sockets this is best effort, not a
guarantee (a busy client may read the public socket first; real Bybit promises nothing either),
and the ``private_delay_ms`` fault deliberately breaks it.

Control endpoints (no auth; the emulator only listens on 127.0.0.1):
``POST /_emulator/faults`` (JSON object of ``Faults`` fields; answers all current values),
``POST /_emulator/faults/reset``, ``POST /_emulator/step`` (``{"n": 1}``),
``POST /_emulator/drop`` (``{"kind": "all"|"public"|"private"}``), ``GET /_emulator/state``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import json
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from adapters.sim.config import SimConfig
from engine.events import CandleClosed, InstrumentSpec
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument

from .candles import INTERVAL_MS, aggregate
from .faults import FaultError, Faults
from .matching import Venue, make_venue
from .ratelimit import RateLimiter
from .rest import RestApi
from .state import EmulatorState
from .timing import WireTimes
from .trade_ws import TradeApi
from .wire import kline_ws_item, partial_bar
from .ws import Hub

#: The key pair the emulator accepts unless told otherwise (``--api-key`` / ``--api-secret``).
DEFAULT_API_KEY = "emulator-key"
DEFAULT_API_SECRET = "emulator-secret"


class EmulatorConfig(msgspec.Struct, frozen=True):
    """How to run one emulator. ``balance`` is in money units (1e-8 USDT);
    ``speed`` in candles per second (0 = only when stepped); ``history`` candles are played
    silently at start-up so that kline queries have a past."""

    spec: InstrumentSpec = BTCUSDT
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    balance: int = 10_000 * MONEY_SCALE
    speed: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    history: int = 0
    sim: SimConfig = SimConfig()
    ack_delay_ms: int = 50  # WS subscribe acks; 0 races pybit (see ``ws`` module docstring)
    trade_reply_delay_ms: float = 1.0  # Trade API replies; 0 races pybit (``trade_ws`` doc)
    fill_settle_ms: int = 20  # pause between a bar's private messages and its closing kline


class Emulator:
    """A running (or ready to run) emulated Bybit venue."""

    def __init__(
        self,
        config: EmulatorConfig,
        candles: Sequence[CandleClosed],
        venue: Venue | None = None,
    ) -> None:
        self.config = config
        self.inst = Instrument(config.spec)
        self.faults = Faults()
        venue = venue or make_venue(self.inst, config.sim, config.balance)
        self.state = EmulatorState(self.inst, config.sim, venue, candles, self.faults)
        self.limiter = RateLimiter()
        self.wire = WireTimes()
        self.hub = Hub(
            faults=self.faults,
            now_ms=self.now_ms,
            api_key=config.api_key,
            api_secret=config.api_secret,
            ack_delay_ms=config.ack_delay_ms,
        )
        self.rest = RestApi(
            self.state,
            self.faults,
            self.limiter,
            now_ms=self.now_ms,
            api_key=config.api_key,
            api_secret=config.api_secret,
            publish=self.hub.publish_private,
            wire=self.wire,
        )
        self.trade = TradeApi(
            self.state,
            self.faults,
            self.limiter,
            self.hub,
            now_ms=self.now_ms,
            api_key=config.api_key,
            api_secret=config.api_secret,
            publish=self.hub.publish_private,
            wire=self.wire,
            reply_delay_ms=config.trade_reply_delay_ms,
        )
        self._runner: web.AppRunner | None = None
        self._player: asyncio.Task[None] | None = None
        self._step_lock = asyncio.Lock()
        self.port = 0
        for _ in range(min(config.history, len(candles))):
            self.state.play_next()

    # ----------------------------------------------------------------- clock and urls

    def now_ms(self) -> int:
        """The server clock: wall-clock ms plus the ``clock_skew_ms`` fault."""
        return int(time.time() * 1000) + self.faults.clock_skew_ms

    @property
    def urls(self) -> dict[str, str]:
        base = f"{self.config.host}:{self.port}"
        return {
            "rest": f"http://{base}",
            "ws_public": f"ws://{base}/v5/public/linear",
            "ws_private": f"ws://{base}/v5/private",
            "ws_trade": f"ws://{base}/v5/trade",
        }

    # ----------------------------------------------------------------- lifecycle

    def app(self) -> web.Application:
        app = web.Application()
        self.rest.add_routes(app)
        app.router.add_get("/v5/public/linear", self.hub.public_handler)
        app.router.add_get("/v5/private", self.hub.private_handler)
        app.router.add_get("/v5/trade", self.trade.handler)
        app.router.add_post("/_emulator/faults", self._ctl_faults)
        app.router.add_post("/_emulator/faults/reset", self._ctl_reset)
        app.router.add_post("/_emulator/step", self._ctl_step)
        app.router.add_post("/_emulator/drop", self._ctl_drop)
        app.router.add_get("/_emulator/state", self._ctl_state)
        return app

    async def start(self) -> dict[str, str]:
        """Bind and serve; return the URLs. Starts candle playback if ``speed > 0``."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        if self.config.speed > 0:
            self._player = asyncio.create_task(self._play(self.config.speed))
        return self.urls

    async def stop(self) -> None:
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
        await self.hub.drop("all")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _play(self, speed: float) -> None:
        half = 0.5 / speed
        while not self.state.exhausted:
            await self.step(1, pause=half)

    # ----------------------------------------------------------------- market

    async def step(self, n: int = 1, pause: float = 0.0) -> int:
        """Play up to ``n`` candles; return how many were played (fewer at the file's end)."""
        played = 0
        async with self._step_lock:
            st = self.state
            for _ in range(n):
                if st.exhausted:
                    break
                c = st.candles[st.cursor]
                mid = partial_bar(c)
                self._publish_klines(c, mid, mid.ts, final=False)
                if pause:
                    await asyncio.sleep(pause)
                _, msgs = st.play_next()
                if self.hub.publish_private(msgs):
                    await self.hub.flush_private()
                    await asyncio.sleep(self.config.fill_settle_ms / 1000)
                self._publish_klines(c, c, c.close_ms - 1, final=True)
                played += 1
                await asyncio.sleep(pause)
        return played

    def _publish_klines(self, c: CandleClosed, view: CandleClosed, at: int, final: bool) -> None:
        """Push the bar being played (as ``view``) to every subscribed kline interval.

        The file's interval gets the bar itself; a longer interval gets its bar so far (rolled
        up from the played bars plus ``view``), confirmed when ``c`` closes it.
        """
        st, inst = self.state, self.inst
        base_ms = c.close_ms - c.open_ms
        for topic in self.hub.kline_topics(c.symbol):
            interval = topic.split(".")[1]
            iv_ms = INTERVAL_MS.get(interval, 0)
            if iv_ms < base_ms or iv_ms % base_ms:
                continue  # acked, but this emulator cannot serve it
            if iv_ms == base_ms:
                bar, confirm = view, final
            else:
                first = c.open_ms - c.open_ms % iv_ms
                lo = bisect.bisect_left(st.candles, first, hi=st.cursor, key=_open_ms)
                bar = aggregate([*st.candles[lo : st.cursor], view], iv_ms)[-1]
                confirm = final and c.close_ms == bar.close_ms
            item = kline_ws_item(inst, bar, interval, confirm=confirm, at_ms=at)
            # the bench's start stamp: when the closing kline's frame goes to the socket
            sent = functools.partial(self.wire.closed, c.close_ms) if final else None
            self.hub.publish_kline(topic, item, at, sent)

    # ----------------------------------------------------------------- control endpoints

    async def _ctl_faults(self, request: web.Request) -> web.Response:
        try:
            changes = json.loads(await request.read() or b"{}")
            if not isinstance(changes, dict):
                raise FaultError("the body must be a JSON object of fault fields")
            self.faults.update(changes)
        except (ValueError, FaultError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.faults.as_dict())

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        self.faults.reset()
        return web.json_response(self.faults.as_dict())

    async def _ctl_step(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            n = int(json.loads(raw).get("n", 1)) if raw else 1
        except (ValueError, AttributeError):
            return web.json_response({"error": 'body must be {"n": <int>}'}, status=400)
        played = await self.step(n)
        return web.json_response({"played": played, **self.status()})

    async def _ctl_drop(self, request: web.Request) -> web.Response:
        raw = await request.read()
        kind = json.loads(raw).get("kind", "all") if raw else "all"
        if kind not in ("all", "public", "private", "trade"):
            return web.json_response({"error": f"unknown kind {kind!r}"}, status=400)
        return web.json_response({"dropped": await self.hub.drop(kind)})

    async def _ctl_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    def status(self) -> dict[str, Any]:
        st = self.state
        return {
            "cursor": st.cursor,
            "candles": len(st.candles),
            "market_ms": st.market_ms,
            "server_ms": self.now_ms(),
            "open_orders": sum(1 for r in st.orders.values() if r.is_open),
            "executions": len(st.executions),
            "connections": len(self.hub.conns),
            "faults": self.faults.as_dict(),
        }


def _open_ms(c: CandleClosed) -> int:
    return c.open_ms
