"""The public (``/v5/public/linear``) and private (``/v5/private``) WebSocket streams.

Each connection has an outgoing queue and one sender task, so a connection's messages leave in
order and the private-message faults (delay, duplicate, reorder, drop after N) act per
connection. Requests on a connection are handled in arrival order (pybit sends auth and
subscribe back to back without waiting).

Choices where Bybit is UNCONFIRMED (reference §8): a private ``subscribe`` before a successful
``auth`` is refused with ``success: false`` (``ret_msg: "Request not authorized"``); private
acks echo ``req_id`` like public ones (pybit matches acks by it); an ``unsubscribe`` is acked
``{"op": "unsubscribe", "success": true, "req_id": ...}``; unknown topics are refused with
``success: false`` and ``ret_msg: "error:handler not found,topic:..."``. A well-formed kline
topic for another symbol or an interval the file cannot serve is acked and stays silent
(refusing it would make pybit tear its connection down). Public RFC 6455 pings
are answered by aiohttp; JSON pings get the stream's documented pong.

Subscribe and unsubscribe acks leave ``ack_delay_ms`` after the request (the emulator's
default is 50 ms, see ``EmulatorConfig``), and a subscription takes effect only as its ack is
sent. On a real network the ack takes a round trip; pybit relies on that: it sends the
subscribe *before* recording its req_id and callback, so an instant ack or an instant first
message raises KeyError inside pybit and kills its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from .auth import AuthFailure, verify_ws_auth
from .faults import Faults
from .ledger import PrivateMsg

PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
_KLINE_RE = re.compile(r"^kline\.(1|3|5|15|30|60|120|240|360|720|D|W|M)\.([A-Z0-9]+)$")
_conn_ids = itertools.count(1)


class _Out:
    """One queued outgoing message, what to do just before sending it, and what to call the
    moment its encoded frame is handed to the socket (``sent``: the latency bench's stamp)."""

    __slots__ = ("before", "data", "delay", "message", "sent")

    def __init__(
        self,
        message: dict[str, Any],
        data: bool,
        delay: float,
        before: Callable[[], None] | None,
        sent: Callable[[], None] | None = None,
    ) -> None:
        self.message, self.data, self.delay, self.before = message, data, delay, before
        self.sent = sent


class Connection:
    """One client connection: its kind, auth state, topics and outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, request: web.Request) -> None:
        self.ws = ws
        self.kind = kind  # "public" | "private"
        self.request = request
        self.conn_id = f"emu-{kind[:3]}-{next(_conn_ids)}"
        self.authed = False
        self.topics: list[str] = []
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.sent_data = 0

    def enqueue(
        self,
        message: dict[str, Any],
        *,
        data: bool,
        delay: float = 0.0,
        before: Callable[[], None] | None = None,
        sent: Callable[[], None] | None = None,
    ) -> None:
        """Queue ``message``; the sender waits ``delay`` s, runs ``before``, then sends it
        (calling ``sent`` just before the frame goes to the socket)."""
        self.queue.put_nowait(_Out(message, data, delay, before, sent))

    def topic_for(self, base: str) -> str | None:
        """The exact topic string this connection subscribed for a private base topic."""
        for t in (base, f"{base}.linear"):
            if t in self.topics:
                return t
        return None


def malformed_frames(message: dict[str, Any]) -> list[str]:
    """What the ``malformed_next`` fault sends before a data message: a frame that is not
    JSON, and the message's topic with an item missing every required field."""
    data = message.get("data") or [{}]
    symbol = data[0].get("symbol", "") if isinstance(data[0], dict) else ""
    broken = {"topic": message.get("topic"), "data": [{"symbol": symbol, "confirm": True}], "ts": 0}
    return ['{"topic": "execution", "data": [', json.dumps(broken)]


class Hub:
    """All live WebSocket connections and the publishing side used by the server."""

    def __init__(
        self,
        *,
        faults: Faults,
        now_ms: Callable[[], int],
        api_key: str,
        api_secret: str,
        ack_delay_ms: int = 0,
    ) -> None:
        self.faults = faults
        self.ack_delay = ack_delay_ms / 1000
        self.now_ms = now_ms
        self.api_key = api_key
        self.api_secret = api_secret
        self.conns: list[Connection] = []
        self._msg_ids = itertools.count(1)
        self.signatures: list[str] = []  # every valid auth signature seen (for tests)
        self._jumps: set[asyncio.Future[None]] = set()  # pongs sent past the queue

    # ----------------------------------------------------------------- handlers

    async def public_handler(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, "public")

    async def private_handler(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, "private")

    async def _serve(self, request: web.Request, kind: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = Connection(ws, kind, request)
        self.conns.append(conn)
        sender = asyncio.create_task(self._sender(conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    conn.enqueue(
                        {"success": False, "ret_msg": "invalid JSON", "op": ""}, data=False
                    )
                    continue
                if isinstance(req, dict):
                    self._handle(conn, req)
        finally:
            if conn in self.conns:
                self.conns.remove(conn)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    def _handle(self, conn: Connection, req: dict[str, Any]) -> None:
        op = req.get("op")
        req_id = str(req.get("req_id", "") or "")
        if op == "ping":
            if conn.kind == "public":
                pong: dict[str, Any] = {
                    "success": True,
                    "ret_msg": "pong",
                    "conn_id": conn.conn_id,
                    "req_id": req_id,
                    "op": "ping",
                }
            else:
                pong = {
                    "req_id": req_id,
                    "op": "pong",
                    "args": [str(self.now_ms())],
                    "conn_id": conn.conn_id,
                }
                if self.faults.private_pong_first:  # ahead of the queue (see Faults)
                    self._jump(conn, pong)
                    return
            conn.enqueue(pong, data=False)
        elif op == "auth" and conn.kind == "private":
            self._auth(conn, req, req_id)
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(conn, req, req_id, op)
        else:
            conn.enqueue(self._ack(conn, str(op), req_id, f"unknown op {op!r}"), data=False)

    def _jump(self, conn: Connection, message: dict[str, Any]) -> None:
        """Send ``message`` now, past whatever waits in ``conn``'s queue."""

        async def send() -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(json.dumps(message))

        task = asyncio.ensure_future(send())
        self._jumps.add(task)
        task.add_done_callback(self._jumps.discard)

    def _ack(self, conn: Connection, op: str, req_id: str, error: str = "") -> dict[str, Any]:
        return {
            "success": not error,
            "ret_msg": error,
            "conn_id": conn.conn_id,
            "req_id": req_id,
            "op": op,
        }

    def _auth(self, conn: Connection, req: dict[str, Any], req_id: str) -> None:
        try:
            verify_ws_auth(
                req.get("args"),
                api_key=self.api_key,
                api_secret=self.api_secret,
                server_ms=self.now_ms(),
            )
        except AuthFailure:
            conn.enqueue(self._ack(conn, "auth", req_id, "Params Error"), data=False)
            return
        conn.authed = True
        self.signatures.append(str((req.get("args") or ["", "", ""])[2]))
        conn.enqueue(self._ack(conn, "auth", req_id), data=False)

    def _subscribe(self, conn: Connection, req: dict[str, Any], req_id: str, op: str) -> None:
        args = req.get("args")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            conn.enqueue(self._ack(conn, op, req_id, "args must be a list of topics"), data=False)
            return
        if conn.kind == "private" and not conn.authed:
            conn.enqueue(self._ack(conn, op, req_id, "Request not authorized"), data=False)
            return
        for topic in args:
            if not self._known(conn, topic):
                error = f"error:handler not found,topic:{topic}"
                conn.enqueue(self._ack(conn, op, req_id, error), data=False)
                return

        def apply() -> None:
            for topic in args:
                if op == "subscribe" and topic not in conn.topics:
                    conn.topics.append(topic)
                elif op == "unsubscribe" and topic in conn.topics:
                    conn.topics.remove(topic)

        # The subscription takes effect as its ack leaves, ``ack_delay`` after the request.
        conn.enqueue(self._ack(conn, op, req_id), data=False, delay=self.ack_delay, before=apply)

    def _known(self, conn: Connection, topic: str) -> bool:
        if conn.kind == "private":
            return topic in PRIVATE_TOPICS or topic in [f"{t}.linear" for t in PRIVATE_TOPICS]
        m = _KLINE_RE.match(topic)
        return m is not None

    # ----------------------------------------------------------------- sending

    async def _sender(self, conn: Connection) -> None:
        try:
            while True:
                out: _Out = await conn.queue.get()
                try:
                    if not await self._send(conn, out):
                        return
                finally:
                    conn.queue.task_done()
        finally:
            while not conn.queue.empty():  # nothing more will be sent: release flush waiters
                conn.queue.get_nowait()
                conn.queue.task_done()

    async def _send(self, conn: Connection, out: _Out) -> bool:
        """Send one queued message; False once the connection is finished."""
        delay = out.delay
        if out.data and conn.kind == "private" and self.faults.private_delay_ms > 0:
            delay += self.faults.private_delay_ms / 1000
        if delay > 0:
            await asyncio.sleep(delay)
        if conn.ws.closed:
            return False
        if out.before is not None:
            out.before()
        try:
            if out.data and self.faults.take("malformed_next"):
                for junk in malformed_frames(out.message):
                    await conn.ws.send_str(junk)
            text = json.dumps(out.message)
            if out.sent is not None:
                out.sent()
            await conn.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            return False
        if not out.data:
            return True
        conn.sent_data += 1
        counter = f"ws_drop_after_{conn.kind}"
        if self.faults.take(counter) and getattr(self.faults, counter) == 0:
            await self._close(conn)
            return False
        return True

    async def flush_private(self, timeout: float = 2.0) -> None:
        """Wait (at most ``timeout`` s) until every private connection has sent its queue.

        Used between a candle's fills and its closing kline, so a client reading both sockets
        gets the fills first. Skipped while the ``private_delay_ms`` fault is on: that fault
        exists to make private messages arrive late, after the kline.
        """
        if self.faults.private_delay_ms > 0:
            return
        joins = [c.queue.join() for c in self.conns if c.kind == "private"]
        if joins:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*joins), timeout)

    async def _close(self, conn: Connection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
        if self.faults.ws_drop_mode == "abort":
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
            return
        with contextlib.suppress(Exception):
            await conn.ws.close(code=1001, message=b"dropped by the emulator")

    async def drop(self, kind: str = "all") -> int:
        """Drop every connection of ``kind`` ("public", "private" or "all") now."""
        victims = [c for c in self.conns if kind in ("all", c.kind)]
        for conn in victims:
            await self._close(conn)
        return len(victims)

    def kline_topics(self, symbol: str) -> list[str]:
        """Distinct ``kline.*.{symbol}`` topics some public connection subscribed."""
        out: list[str] = []
        for conn in self.conns:
            if conn.kind == "public":
                for t in conn.topics:
                    if t.startswith("kline.") and t.endswith(f".{symbol}") and t not in out:
                        out.append(t)
        return out

    def publish_kline(
        self, topic: str, item: dict[str, Any], ts: int, sent: Callable[[], None] | None = None
    ) -> None:
        """Queue a kline push to every connection subscribed to ``topic``; ``sent`` is called
        as each one's frame goes to its socket."""
        message = {"topic": topic, "data": [item], "ts": ts, "type": "snapshot"}
        for conn in self.conns:
            if conn.kind == "public" and topic in conn.topics:
                conn.enqueue(message, data=True, sent=sent)

    def publish_private(self, msgs: list[PrivateMsg]) -> int:
        """Send one venue action's private messages to every subscribed, authed connection;
        return how many messages were queued in all."""
        queued = 0
        if not msgs:
            return 0
        for conn in self.conns:
            if conn.kind != "private" or not conn.authed:
                continue
            out = []
            for base, item in msgs:
                topic = conn.topic_for(base)
                if topic is None:
                    continue
                out.append(
                    {
                        "id": f"emu-{next(self._msg_ids)}",
                        "topic": topic,
                        "creationTime": self.now_ms(),
                        "data": [item],
                    }
                )
            if self.faults.private_reorder:
                out.reverse()
            for message in out:
                conn.enqueue(message, data=True)
                if self.faults.private_duplicate:
                    conn.enqueue(message, data=True)
            queued += len(out)
        return queued
