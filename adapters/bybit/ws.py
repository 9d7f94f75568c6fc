"""One self-healing Bybit v5 WebSocket stream (public or private) on ``websockets``.

A ``WsStream`` connects, authenticates (private: ``GET/realtime{expires}`` signed with
the secret, ``expires`` from the exchange clock + 10 s), subscribes its topics, sends an
application ping (``{"op":"ping"}``) every ``ping_interval_s``, and hands every data
message (anything with a ``topic``) to ``on_message`` in arrival order. When the
connection dies it reconnects with exponential backoff and jitter, re-authenticates,
re-subscribes, and then awaits ``on_connected(n)`` (n = 0 on the first connection,
1, 2, ... on reconnects): the venue uses that hook to catch up over REST, because Bybit
does not replay missed private messages (reference §4.7).

A frame that is not JSON, or JSON without a topic/op, is logged and skipped; the
stream goes on. An ``urgent`` hook sees each decoded frame before it is handled; when it
starts something (the venue's barrier ping on a closed kline), the stream lets the event
loop run one step first, so that goes out before the frame's conversion.
``on_message`` exceptions are logged and do not kill the stream either.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import websockets
from websockets.asyncio.client import ClientConnection

from adapters.bybit.clock import ExchangeClock
from adapters.bybit.errors import BybitError
from adapters.bybit.keys import ApiKeys
from adapters.bybit.retry import Backoff

log = logging.getLogger(__name__)
#: The logger handed to ``websockets``: pinned at INFO so that its DEBUG frame dumps
#: (which would include the auth message's key and signature) are never written.
wire_log = logging.getLogger(__name__ + ".wire")
wire_log.setLevel(logging.INFO)

MessageHandler = Callable[[dict[str, Any]], None]
#: (stream name, frame as received, decoded to an object?): every frame but the auth reply
RawHook = Callable[[str, str | bytes, bool], None]
ConnectedHook = Callable[[int], Awaitable[None]]
#: sees each decoded frame first; True: it started something (a barrier ping) that is to
#: leave before the frame is handled
UrgentHook = Callable[[dict[str, Any]], bool]


async def close_and_cancel(ws: Any, task: asyncio.Task[None] | None) -> None:
    """Stop a socket's connection task: close the connection, cancel the task, wait for it
    (the public, private and Trade API sockets stop alike)."""
    if ws is not None:
        with contextlib.suppress(Exception):
            await ws.close()
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class AuthFailed(BybitError):
    """The venue refused the private stream's auth (bad key, expired signature)."""


def auth_message(keys: ApiKeys, expires_ms: int, req_id: str = "auth") -> dict[str, Any]:
    """The private-stream auth request: signature = HMAC_SHA256(secret, "GET/realtime"+expires)."""
    payload = f"GET/realtime{expires_ms}".encode()
    sig = hmac.new(keys.secret.reveal().encode(), payload, hashlib.sha256).hexdigest()
    return {"req_id": req_id, "op": "auth", "args": [keys.key, expires_ms, sig]}


class WsStream:
    """A reconnecting stream; ``start()`` runs it in a task until ``stop()``."""

    def __init__(
        self,
        name: str,
        url: str,
        topics: list[str],
        on_message: MessageHandler,
        *,
        keys: ApiKeys | None = None,
        clock: ExchangeClock | None = None,
        on_connected: ConnectedHook | None = None,
        ping_interval_s: float = 20.0,
        backoff: Backoff | None = None,
        use_proxy: bool = True,
        open_timeout_s: float = 10.0,
        on_raw: RawHook | None = None,
        urgent: UrgentHook | None = None,
    ) -> None:
        self.name, self.url, self.topics = name, url, list(topics)
        self._urgent = urgent
        self._on_message, self._on_connected = on_message, on_connected
        self._on_raw = on_raw
        self._keys, self._clock = keys, clock or ExchangeClock()
        self._ping_s, self._backoff = ping_interval_s, backoff or Backoff(0.5, 30.0)
        self._proxy: Literal[True] | None = True if use_proxy else None
        self._open_timeout = open_timeout_s
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._stopping = False
        self._ids = itertools.count(1)
        self._barriers: dict[str, asyncio.Future[bool]] = {}  # req_id -> its pong's waiter
        self._pings: set[asyncio.Task[None]] = set()  # barrier pings being written
        self.connections = 0  # successful (authenticated + subscribed) connections
        self.malformed = 0  # frames skipped as undecodable
        self.pongs = 0
        self.subscribed = asyncio.Event()  # set while a connection is subscribed
        self.refused = asyncio.Event()  # set when the venue refused our auth (bad keys)
        self.refusal = ""

    def __repr__(self) -> str:
        return f"WsStream({self.name}, {self.url}, connections={self.connections})"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ws-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        await close_and_cancel(self._ws, self._task)
        self._task = None

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            before = self.connections
            try:
                await self._session()
                failures = 0  # the connection worked for a while: start backoff afresh
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of one connection: log, back off, retry
                # A connection that got subscribed and was later cut is a first failure,
                # not one more in a row: only failed attempts grow the backoff.
                failures = 1 if self.connections > before else failures + 1
                log.warning("%s stream: %s: %s", self.name, type(exc).__name__, exc)
                if isinstance(exc, AuthFailed):
                    self.refusal = str(exc)
                    self.refused.set()
            self.subscribed.clear()
            if self._stopping:
                break
            delay = self._backoff.delay(max(0, failures - 1))
            log.info("%s stream reconnecting in %.2f s", self.name, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        async with websockets.connect(
            self.url,
            proxy=self._proxy,
            open_timeout=self._open_timeout,
            max_size=2**22,
            logger=wire_log,
        ) as ws:
            self._ws = ws
            try:
                if self._keys is not None:
                    await self._auth(ws)
                await self._subscribe(ws)
                n = self.connections
                self.connections += 1
                self.subscribed.set()
                pinger = asyncio.create_task(self._ping_loop(ws))
                hook = asyncio.create_task(self._connected(n))
                try:
                    async for raw in ws:
                        msg = self._decode(raw)
                        if msg is not None and self._urgent is not None and self._urgent(msg):
                            await asyncio.sleep(0)  # one loop step: what it started goes out
                        self._handle(raw, msg)
                finally:
                    pinger.cancel()
                    if not hook.done():
                        hook.cancel()
            finally:
                self._ws = None
                self._end_barriers()
        if not self._stopping:
            raise ConnectionError("connection closed by the server")

    async def _connected(self, n: int) -> None:
        if self._on_connected is None:
            return
        try:
            await self._on_connected(n)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s stream: on_connected hook failed", self.name)

    async def _auth(self, ws: ClientConnection) -> None:
        assert self._keys is not None
        expires = self._clock.now_ms() + 10_000
        await ws.send(json.dumps(auth_message(self._keys, expires)))
        reply = await self._await_op(ws, "auth")
        if reply.get("success") is not True:
            raise AuthFailed(f"{self.name} auth refused: {reply.get('ret_msg', '')}")

    async def _subscribe(self, ws: ClientConnection) -> None:
        if not self.topics:
            return
        req_id = f"sub-{next(self._ids)}"
        await ws.send(json.dumps({"op": "subscribe", "req_id": req_id, "args": self.topics}))
        reply = await self._await_op(ws, "subscribe")
        if reply.get("success") is not True:
            raise BybitError(f"{self.name} subscribe refused: {reply.get('ret_msg', '')}")

    async def _await_op(self, ws: ClientConnection, op: str, timeout_s: float = 10.0) -> dict:
        """Read until the reply to ``op``; data arriving meanwhile is dispatched."""
        async with asyncio.timeout(timeout_s):
            while True:
                raw = await ws.recv()
                msg = self._decode(raw)
                self._keep(raw, msg)
                if msg is None:
                    continue
                if msg.get("op") == op:
                    return msg
                if "topic" in msg:
                    self._deliver(msg)

    async def _ping_loop(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self._ping_s)
            await ws.send(json.dumps({"op": "ping", "req_id": f"ping-{next(self._ids)}"}))

    async def barrier(self, timeout_s: float = 1.0) -> bool:
        """Return once every message the venue sent on this stream before our ping is handled.

        Messages on one connection arrive in order, so the pong to a ping with a unique
        req_id comes after everything the venue queued before it. False if the stream is
        down or the pong does not come in time (the caller then goes on without it).
        """
        return await self.await_pong(self.ping_soon(), timeout_s)

    def ping_soon(self) -> asyncio.Future[bool] | None:
        """Send a barrier ping (written by a task, next on the loop) and return the future its
        pong resolves: True once everything before the pong is handled, False if the
        connection ended first. None if the stream is down. The future is resolved where the
        pong is dispatched, so whoever awaits it wakes at once (no task in between)."""
        ws = self._ws
        if ws is None:
            return None
        req_id = f"barrier-{next(self._ids)}"
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._barriers[req_id] = waiter
        task = asyncio.ensure_future(self._send_ping(ws, req_id, waiter))
        self._pings.add(task)
        task.add_done_callback(self._pings.discard)
        return waiter

    async def _send_ping(
        self, ws: ClientConnection, req_id: str, waiter: asyncio.Future[bool]
    ) -> None:
        try:
            await ws.send(json.dumps({"op": "ping", "req_id": req_id}))
        except (websockets.ConnectionClosed, OSError):
            self._barriers.pop(req_id, None)
            if not waiter.done():
                waiter.set_result(False)

    async def await_pong(self, waiter: asyncio.Future[bool] | None, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) for a ``ping_soon`` pong; False if none came."""
        if waiter is None:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        except TimeoutError:
            return False
        finally:
            self.forget(waiter)

    def forget(self, waiter: asyncio.Future[bool]) -> None:
        """Stop waiting for ``waiter``'s pong (a later ping covers at least as much)."""
        for req_id, pending in list(self._barriers.items()):
            if pending is waiter:
                del self._barriers[req_id]

    def _end_barriers(self) -> None:
        """The connection ended: no pending pong will come."""
        barriers, self._barriers = self._barriers, {}
        for waiter in barriers.values():
            if not waiter.done():
                waiter.set_result(False)

    def _decode(self, raw: str | bytes) -> dict[str, Any] | None:
        try:
            msg = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.malformed += 1
            log.warning(
                "%s stream: skipped a frame that is not JSON (%d bytes)", self.name, len(raw)
            )
            return None
        if not isinstance(msg, dict):
            self.malformed += 1
            log.warning("%s stream: skipped a JSON frame that is not an object", self.name)
            return None
        return msg

    def _keep(self, raw: str | bytes, msg: dict[str, Any] | None) -> None:
        """Hand a received frame to the capture hook -- never the auth reply."""
        if self._on_raw is not None and (msg is None or msg.get("op") != "auth"):
            self._on_raw(self.name, raw, msg is not None)

    def _handle(self, raw: str | bytes, msg: dict[str, Any] | None) -> None:
        """Keep a received frame and act on it (``msg``: the frame decoded, None if not)."""
        self._keep(raw, msg)
        if msg is None:
            return
        if "topic" in msg:
            self._deliver(msg)
            return
        op = msg.get("op")
        if op == "pong" or msg.get("ret_msg") == "pong":
            self.pongs += 1
            waiter = self._barriers.pop(str(msg.get("req_id", "")), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(True)
        elif op in ("subscribe", "unsubscribe", "auth"):
            if msg.get("success") is False:
                log.warning("%s stream: %s refused: %s", self.name, op, msg.get("ret_msg"))
        else:
            log.debug("%s stream: ignored control message %s", self.name, sorted(msg))

    def _deliver(self, msg: dict[str, Any]) -> None:
        try:
            self._on_message(msg)
        except Exception:
            log.exception("%s stream: handler failed on topic %r", self.name, msg.get("topic"))
