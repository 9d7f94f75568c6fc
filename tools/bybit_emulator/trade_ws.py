"""The WebSocket Trade API (``/v5/trade``): order create/amend/cancel and their batch forms.

Frames follow Bybit's "Websocket Trade Guideline" (v5): ``{"op": "auth", "args": [key,
expires, signature]}`` answered ``{"retCode": 0, "retMsg": "OK", "op": "auth", "connId"}``;
``{"reqId", "header": {"X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"?}, "op": "order.create",
"args": [params]}`` answered ``{"reqId", "retCode", "retMsg", "op", "data", "retExtInfo",
"header": {"X-Bapi-Limit", "X-Bapi-Limit-Status", "X-Bapi-Limit-Reset-Timestamp", "Traceid",
"Timenow"}, "connId"}``; ``{"op": "ping"}`` answered ``{"retCode": 0, "retMsg": "OK", "op":
"pong", "data": [now], "connId"}``. Batch ops (``order.create-batch`` ...) take
``args: [{"category", "request": [params, ...]}]`` and answer ``data.list`` with
``retExtInfo.list`` of ``{"code", "msg"}`` per item.

The same state and matching as REST (``EmulatorState.create/amend/cancel``), the same rate
budget (``RateLimiter``, keyed by the REST path: Bybit shares the limit), the same faults:
``rate_limit_next`` (10006), ``lose_reply_next`` (applied, no reply; mode "close" also drops
the socket), ``ws_drop_*`` via ``drop("trade")``. A ``reqId`` seen before on the connection
is refused with 20006; a request before auth with 10003; a stale timestamp with 10002.

Replies leave ``reply_delay_ms`` after the request, in order (one sender per connection): a
real reply takes a round trip, and pybit registers a request's callback only *after* sending
it, so an instant reply finds no callback and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSMsgType, web

from .auth import AuthFailure, verify_ws_auth
from .batch import SINGLE, apply_batch
from .errors import ApiError
from .faults import Faults
from .ledger import PrivateMsg
from .ratelimit import RateLimiter, Verdict
from .rest import WRITES
from .state import EmulatorState
from .timing import WireTimes
from .ws import Connection, Hub

OPS: Final[dict[str, str]] = {
    "order.create": "/v5/order/create",
    "order.amend": "/v5/order/amend",
    "order.cancel": "/v5/order/cancel",
}
BATCH_OPS: Final[dict[str, str]] = {f"{op}-batch": f"{path}-batch" for op, path in OPS.items()}
DUPLICATE_REQ_ID: Final = 20006
NOT_AUTHORIZED: Final = 10003
DEFAULT_RECV_WINDOW_MS: Final = 5000
_ids = itertools.count(1)


class TradeApi:
    """aiohttp handler of ``/v5/trade`` bound to one emulator."""

    def __init__(
        self,
        state: EmulatorState,
        faults: Faults,
        limiter: RateLimiter,
        hub: Hub,
        *,
        now_ms: Callable[[], int],
        api_key: str,
        api_secret: str,
        publish: Callable[[list[PrivateMsg]], object],
        wire: WireTimes | None = None,
        reply_delay_ms: float = 1.0,
    ) -> None:
        self.delay = reply_delay_ms / 1000
        self.state, self.faults, self.limiter, self.hub = state, faults, limiter, hub
        self.now_ms, self.api_key, self.api_secret = now_ms, api_key, api_secret
        self.publish, self.wire = publish, wire
        self.requests = 0  # order operations received (tests)

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = Connection(ws, "trade", request)
        conn.conn_id = f"emu-trd-{next(_ids)}"
        seen: set[str] = set()
        self.hub.conns.append(conn)  # so drop("trade") / drop("all") reach it
        sender = asyncio.create_task(self._sender(conn))
        try:
            async for msg in ws:
                arrived = time.perf_counter()  # the bench's arrival stamp, before any work
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await self._send(conn, {"retCode": 10001, "retMsg": "invalid JSON", "op": ""})
                    continue
                if isinstance(req, dict) and not await self._handle(conn, req, seen, arrived):
                    break
        finally:
            if conn in self.hub.conns:
                self.hub.conns.remove(conn)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send(self, conn: Connection, body: dict[str, Any]) -> None:
        body.setdefault("connId", conn.conn_id)
        conn.queue.put_nowait((time.monotonic() + self.delay, json.dumps(body)))

    async def _sender(self, conn: Connection) -> None:
        while True:
            due, text = await conn.queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(text)

    async def _handle(
        self, conn: Connection, req: dict[str, Any], seen: set[str], arrived: float
    ) -> bool:
        """Answer one request (its frame arrived at ``arrived``, ``perf_counter()``); False
        once the connection is to be dropped."""
        op = str(req.get("op", ""))
        echo = {"reqId": req["reqId"]} if "reqId" in req else {}
        if op == "ping":
            await self._send(
                conn,
                {**echo, "retCode": 0, "retMsg": "OK", "op": "pong", "data": [str(self.now_ms())]},
            )
            return True
        if op == "auth":
            await self._send(conn, {**echo, **self._auth(conn, req), "op": "auth"})
            return True
        if op not in OPS and op not in BATCH_OPS:
            await self._send(
                conn, {**echo, "retCode": 10404, "retMsg": f"op {op!r} not supported", "op": op}
            )
            return True
        self.requests += 1
        req_id = str(req.get("reqId", ""))
        if not conn.authed:
            return await self._refuse(conn, echo, op, NOT_AUTHORIZED, "Request not authorized")
        if req_id and req_id in seen:
            return await self._refuse(conn, echo, op, DUPLICATE_REQ_ID, "reqId is duplicated")
        if req_id:
            seen.add(req_id)
        now = self.now_ms()
        raw_header = req.get("header")
        header: dict[str, Any] = raw_header if isinstance(raw_header, dict) else {}
        stale = _stale(header, now)
        if stale:
            return await self._refuse(conn, echo, op, 10002, stale)
        path = OPS.get(op) or BATCH_OPS[op]
        if self.faults.take("rate_limit_next"):
            verdict = self.limiter.forced_denial(path, now, self.faults.rate_limit_reset_ms)
        else:
            verdict = self.limiter.check(path, now)
        if not verdict.allowed:
            return await self._refuse(conn, echo, op, 10006, "Too many visits!", verdict)
        args = req.get("args")
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            return await self._refuse(conn, echo, op, 10001, "args must hold one object")
        ext: dict[str, Any] = {}
        try:
            if op in OPS:
                if op == "order.create" and self.wire is not None:
                    self.wire.create_item(args[0], arrived)
                data, msgs = WRITES[path](self.state, args[0])
            else:
                wire = self.wire
                stamp = None if wire is None else lambda item: wire.create_item(item, arrived)
                data, ext, msgs = apply_batch(
                    self.state, path, args[0], WRITES[SINGLE[path]], now, stamp
                )
        except ApiError as exc:
            return await self._refuse(conn, echo, op, exc.code, exc.message, verdict)
        self.publish(msgs)
        if self.faults.take("lose_reply_next"):
            if self.faults.lose_reply_mode == "close":
                await self.hub._close(conn)
                return False
            return True  # applied; the answer never leaves
        reply = {
            **echo,
            "retCode": 0,
            "retMsg": "OK",
            "op": op,
            "data": data,
            "retExtInfo": ext,
            "header": _header(verdict, self.now_ms()),
        }
        await self._send(conn, reply)
        return True

    def _auth(self, conn: Connection, req: dict[str, Any]) -> dict[str, Any]:
        if conn.authed:
            return {"retCode": 20001, "retMsg": "repeat auth"}
        try:
            verify_ws_auth(
                req.get("args"),
                api_key=self.api_key,
                api_secret=self.api_secret,
                server_ms=self.now_ms(),
            )
        except AuthFailure:
            return {"retCode": 10004, "retMsg": "invalid sign"}
        conn.authed = True
        self.hub.signatures.append(str((req.get("args") or ["", "", ""])[2]))
        return {"retCode": 0, "retMsg": "OK"}

    async def _refuse(
        self,
        conn: Connection,
        echo: dict[str, Any],
        op: str,
        code: int,
        msg: str,
        verdict: Verdict | None = None,
    ) -> bool:
        body: dict[str, Any] = {
            **echo,
            "retCode": code,
            "retMsg": msg,
            "op": op,
            "data": {},
            "retExtInfo": {},
        }
        if verdict is not None:
            body["header"] = _header(verdict, self.now_ms())
        await self._send(conn, body)
        return True


def _stale(header: dict[str, Any], now: int) -> str:
    """Bybit's window: server - recv_window <= timestamp < server + 1000 ("" when fine)."""
    try:
        ts = int(str(header.get("X-BAPI-TIMESTAMP", "")))
        window = int(str(header.get("X-BAPI-RECV-WINDOW") or DEFAULT_RECV_WINDOW_MS))
    except ValueError:
        return "X-BAPI-TIMESTAMP missing or not a number"
    if not now - window <= ts < now + 1000:
        return f"invalid request, please check your timestamp ({ts}) and recv_window ({window})"
    return ""


def _header(verdict: Verdict, now: int) -> dict[str, str]:
    return {
        **verdict.headers(),
        "Traceid": uuid.uuid4().hex,
        "Timenow": str(now),
    }
