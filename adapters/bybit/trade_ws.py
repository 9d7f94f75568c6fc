"""Orders over Bybit's WebSocket Trade API (``wss://.../v5/trade``), behind ``BybitRest.call``.

``TradeSocket`` keeps one authenticated connection (auth = the private stream's
``GET/realtime{expires}`` signature; reconnects with backoff), sends ``order.create`` /
``order.amend`` / ``order.cancel`` (and ``-batch`` forms) with a unique ``reqId`` and the
``X-BAPI-TIMESTAMP`` of the exchange clock, and resolves each request when the reply with
its ``reqId`` comes back. Requests do not wait for each other's replies.

``TradeSocket.once`` has the shape of ``BybitRest._once``: it is handed to
``BybitRest.call(path, params, via=...)``, so the Trade API shares REST's rate limiter
(Bybit counts both against one budget), its retry classes (10006 waits for the reset, 10002
re-syncs the clock) and, above it, the venue's idempotency: a reply lost to a timeout or a
dropped socket raises ``TransportError`` (ambiguous), and the venue looks the orderLinkId up
(with a wait) before any resend, whichever transport carried it. While the socket is down
the venue sends over REST.

Received replies are handed to ``on_frame`` as received (the wire capture); the auth reply
never is, and nothing sent is.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import websockets
from websockets.asyncio.client import ClientConnection

from adapters.bybit.clock import ExchangeClock
from adapters.bybit.errors import ApiError, BybitError, TransportError
from adapters.bybit.keys import ApiKeys
from adapters.bybit.ratelimit import RateLimiter
from adapters.bybit.rest import result_of
from adapters.bybit.retry import RATE_LIMIT_CODES, Backoff
from adapters.bybit.ws import auth_message, close_and_cancel, wire_log

log = logging.getLogger(__name__)

OPS: Final[dict[str, str]] = {
    "/v5/order/create": "order.create",
    "/v5/order/amend": "order.amend",
    "/v5/order/cancel": "order.cancel",
    "/v5/order/create-batch": "order.create-batch",
    "/v5/order/amend-batch": "order.amend-batch",
    "/v5/order/cancel-batch": "order.cancel-batch",
}
#: (path, params, raw reply, receive time): every order reply as received
FrameHook = Callable[[str, Mapping[str, Any] | None, str, int], None]


class TradeSocket:
    """One reconnecting Trade API connection; ``start()`` runs it until ``stop()``."""

    def __init__(
        self,
        url: str,
        keys: ApiKeys,
        clock: ExchangeClock,
        limiter: RateLimiter,
        *,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        ping_interval_s: float = 20.0,
        backoff: Backoff | None = None,
        use_proxy: bool = True,
    ) -> None:
        self.url, self._keys, self.clock, self.limiter = url, keys, clock, limiter
        self.recv_window_ms, self.timeout_s, self._ping_s = (
            recv_window_ms,
            timeout_s,
            ping_interval_s,
        )
        self._backoff = backoff or Backoff(0.5, 30.0)
        self._proxy: Literal[True] | None = True if use_proxy else None
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[tuple[dict[str, Any], str, int]]] = {}
        self.ready = asyncio.Event()  # set while authenticated
        self.on_frame: FrameHook | None = None
        self.connections = 0
        self.requests = 0
        self.sent: dict[str, int] = {}  # requests written to the socket, per REST path
        self.last_write = 0.0  # perf_counter() when ws.send() of the last request returned

    def __repr__(self) -> str:
        return f"TradeSocket({self.url}, ready={self.ready.is_set()})"

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bybit-trade-ws")

    async def stop(self) -> None:
        self._stopping = True
        await close_and_cancel(self._ws, self._task)
        self._task = None
        self._fail_waiting("trade socket stopped")

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self._session()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("trade socket: %s: %s (orders go over REST)", type(exc).__name__, exc)
            self.ready.clear()
            self._fail_waiting("trade socket dropped")
            if self._stopping:
                break
            await asyncio.sleep(self._backoff.delay(max(0, failures - 1)))

    async def _session(self) -> None:
        async with websockets.connect(
            self.url, proxy=self._proxy, open_timeout=10.0, max_size=2**22, logger=wire_log
        ) as ws:
            self._ws = ws
            try:
                expires = self.clock.now_ms() + 10_000
                await ws.send(json.dumps(auth_message(self._keys, expires)))
                async with asyncio.timeout(10.0):
                    while True:
                        reply = json.loads(await ws.recv())
                        if isinstance(reply, dict) and reply.get("op") == "auth":
                            break
                if reply.get("retCode") != 0:
                    raise BybitError(f"trade socket auth refused: {reply.get('retMsg', '')}")
                self.connections += 1
                self.ready.set()
                pinger = asyncio.create_task(self._ping_loop(ws))
                try:
                    async for raw in ws:
                        self._dispatch(raw if isinstance(raw, str) else raw.decode())
                finally:
                    pinger.cancel()
            finally:
                self._ws = None
        if not self._stopping:
            raise ConnectionError("trade socket closed by the server")

    async def _ping_loop(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self._ping_s)
            await ws.send(json.dumps({"op": "ping"}))

    def _dispatch(self, raw: str) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            log.warning("trade socket: skipped a frame that is not JSON (%d bytes)", len(raw))
            return
        if not isinstance(msg, dict):
            return
        waiter = self._waiting.pop(str(msg.get("reqId", "")), None)
        if waiter is not None and not waiter.done():
            waiter.set_result((msg, raw, self.clock.now_ms()))
        elif msg.get("op") not in ("pong", "ping"):
            log.warning("trade socket: reply for no pending request: %s", raw[:200])

    def _fail_waiting(self, why: str) -> None:
        for req_id, waiter in list(self._waiting.items()):
            if not waiter.done():
                waiter.set_exception(TransportError("trade", why))
            self._waiting.pop(req_id, None)

    # -- requests ------------------------------------------------------------

    async def once(self, path: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """One request (``BybitRest._once``'s contract): the reply's ``data``, or raises
        ``ApiError`` (retCode != 0) / ``TransportError`` (no reply: ambiguous)."""
        ws = self._ws
        if ws is None or not self.ready.is_set():
            raise TransportError(path, "trade socket down", 503)  # before sending: REST's turn
        req_id = f"r{next(self._ids)}-{self.clock.now_ms()}"
        header = {
            "X-BAPI-TIMESTAMP": str(self.clock.now_ms()),
            "X-BAPI-RECV-WINDOW": str(self.recv_window_ms),
        }
        message = {"reqId": req_id, "header": header, "op": OPS[path], "args": [dict(params or {})]}
        waiter: asyncio.Future[tuple[dict[str, Any], str, int]] = (
            asyncio.get_running_loop().create_future()
        )
        self.requests += 1
        async with self.limiter.slot(path):
            self._waiting[req_id] = waiter
            try:
                await ws.send(json.dumps(message))
                self.last_write = time.perf_counter()
                self.sent[path] = self.sent.get(path, 0) + 1
            except (websockets.ConnectionClosed, OSError) as exc:
                self._waiting.pop(req_id, None)
                raise TransportError(path, f"trade socket: {type(exc).__name__}") from None
        try:
            reply, raw, recv_ms = await asyncio.wait_for(waiter, self.timeout_s)
        except TimeoutError:
            self._waiting.pop(req_id, None)
            raise TransportError(path, "trade socket: reply timed out") from None
        except TransportError as exc:
            raise TransportError(path, exc.detail) from None
        headers = reply.get("header") or {}
        code = int(reply.get("retCode", -1))
        if code in RATE_LIMIT_CODES:
            reset = str(headers.get("X-Bapi-Limit-Reset-Timestamp", ""))
            self.limiter.penalise(
                path, int(reset) if reset.isdigit() else None, self.clock.offset_ms
            )
        else:
            self.limiter.observe(path, headers, self.clock.offset_ms)
        if self.on_frame is not None:
            self.on_frame(path, params, raw, recv_ms)
        if code != 0:
            raise ApiError(path, code, str(reply.get("retMsg", "")))
        return result_of(path, reply, "data")
