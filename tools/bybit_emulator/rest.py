"""The v5 REST surface: one dispatcher applies faults, rate limits and signature checks, then
calls the endpoint's function and wraps its result in Bybit's envelope.

Order of checks for a request: injected HTTP failure / stall, rate budget (retCode 10006; HTTP
403 for market data over the per-IP budget),
authentication (10003 / 10002 / 10004), parameters and business rules (10001, 110xxx), then the
write itself. Business and auth errors are HTTP 200 with a JSON envelope, as Bybit answers;
every response carries the three ``X-Bapi-Limit*`` headers. A GET's parameters are parsed from
the raw query string that was signed; a POST's from the raw body that was signed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from . import margin, queries
from .auth import AuthFailure, verify_rest
from .batch import SINGLE, apply_batch
from .errors import ApiError
from .faults import Faults
from .ledger import PrivateMsg
from .ratelimit import RateLimiter, Verdict
from .state import EmulatorState
from .timing import WireTimes

Result = dict[str, Any]
ReadFn = Callable[[EmulatorState, dict[str, Any]], Result]
WriteFn = Callable[[EmulatorState, dict[str, Any]], tuple[Result, list[PrivateMsg]]]

#: path -> (method, signed?, function). Writes return private messages too.
READS: dict[str, tuple[str, bool, ReadFn]] = {
    "/v5/market/kline": ("GET", False, queries.kline),
    "/v5/market/instruments-info": ("GET", False, queries.instruments_info),
    "/v5/market/funding/history": ("GET", False, queries.funding_history),
    "/v5/order/realtime": ("GET", True, queries.open_orders),
    "/v5/order/history": ("GET", True, queries.order_history),
    "/v5/execution/list": ("GET", True, queries.executions),
    "/v5/position/list": ("GET", True, queries.positions),
    "/v5/account/wallet-balance": ("GET", True, queries.wallet_balance),
}
WRITES: dict[str, WriteFn] = {
    "/v5/order/create": EmulatorState.create,
    "/v5/order/amend": EmulatorState.amend,
    "/v5/order/cancel": EmulatorState.cancel,
    "/v5/order/cancel-all": EmulatorState.cancel_all,
    "/v5/position/trading-stop": EmulatorState.trading_stop,
    "/v5/position/set-leverage": margin.set_leverage,
    "/v5/account/set-margin-mode": margin.set_margin_mode,
}


class RestApi:
    """aiohttp handlers bound to one emulator's state, hub publisher and clock."""

    def __init__(
        self,
        state: EmulatorState,
        faults: Faults,
        limiter: RateLimiter,
        *,
        now_ms: Callable[[], int],
        api_key: str,
        api_secret: str,
        publish: Callable[[list[PrivateMsg]], object],
        wire: WireTimes | None = None,
    ) -> None:
        self.wire = wire
        self.state = state
        self.faults = faults
        self.limiter = limiter
        self.now_ms = now_ms
        self.api_key = api_key
        self.api_secret = api_secret
        self.publish = publish
        self.signatures: list[str] = []  # every valid signature seen (tests grep logs for them)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v5/market/time", self.handle)
        for path, (method, _, _) in READS.items():
            app.router.add_route(method, path, self.handle)
        for path in (*WRITES, *SINGLE):
            app.router.add_post(path, self.handle)

    def _reply(self, body: Result, verdict: Verdict | None, status: int = 200) -> web.Response:
        headers = verdict.headers() if verdict else {}
        return web.Response(
            text=json.dumps(body),
            status=status,
            content_type="application/json",
            headers=headers,
        )

    def _error(self, code: int, msg: str, verdict: Verdict | None) -> web.Response:
        return self._reply(
            {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": self.now_ms()},
            verdict,
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()  # the bench's arrival stamp, before any work
        path = request.path
        f = self.faults
        if request.method == "POST":
            payload = (await request.read()).decode("utf-8", errors="replace")
            if path == "/v5/order/create" and self.wire is not None:
                self.wire.create_request(payload, arrived)
        else:
            payload = request.rel_url.raw_query_string
        if path.startswith(f.http_fault_path):
            if f.take("http_error_next"):
                return web.Response(status=f.http_error_status, text="injected failure")
            if f.take("timeout_next"):
                await asyncio.sleep(f.timeout_s)
        now = self.now_ms()
        signed = path in WRITES or path in SINGLE or (path in READS and READS[path][1])
        if signed and f.take("rate_limit_next"):
            verdict = self.limiter.forced_denial(path, now, f.rate_limit_reset_ms)
        else:
            verdict = self.limiter.check(path, now)
        if not verdict.allowed and not signed:
            # The per-IP budget (600 per 5 s): Bybit answers HTTP 403, not an envelope.
            return web.Response(status=403, text="access too frequent", headers=verdict.headers())
        if not verdict.allowed:
            return self._error(10006, "Too many visits!", verdict)
        if signed:
            try:
                verify_rest(
                    request.headers,
                    payload,
                    api_key=self.api_key,
                    api_secret=self.api_secret,
                    server_ms=now,
                )
            except AuthFailure as exc:
                return self._error(exc.code, exc.message, verdict)
            self.signatures.append(request.headers.get("X-BAPI-SIGN", ""))
        ext: Result = {}
        try:
            params = _params(request.method, payload)
            if path == "/v5/market/time":
                result = queries.server_time(now)
            elif path in READS:
                result = READS[path][2](self.state, params)
            else:
                if path in SINGLE:
                    wire = self.wire
                    stamp = None if wire is None else lambda item: wire.create_item(item, arrived)
                    write = WRITES[SINGLE[path]]
                    result, ext, msgs = apply_batch(self.state, path, params, write, now, stamp)
                else:
                    result, msgs = WRITES[path](self.state, params)
                self.publish(msgs)
                if f.take("lose_reply_next"):
                    return self._lose_reply(request)
        except ApiError as exc:
            return self._error(exc.code, exc.message, verdict)
        body = {
            "retCode": 0,
            "retMsg": "OK",
            "result": result,
            "retExtInfo": ext,
            "time": self.now_ms(),
        }
        return self._reply(body, verdict)

    def _lose_reply(self, request: web.Request) -> web.StreamResponse:
        """The write happened; the client never learns it (connection cut, or HTTP 500)."""
        if self.faults.lose_reply_mode == "500":
            return web.Response(status=500, text="injected failure after applying the request")
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=500, text="never delivered: the connection is gone")


def _params(method: str, payload: str) -> dict[str, Any]:
    if method == "GET":
        return dict(parse_qsl(payload, keep_blank_values=True))
    if not payload.strip():
        return {}
    try:
        body = json.loads(payload)
    except ValueError:
        raise ApiError(10001, "params error: the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(10001, "params error: the body must be a JSON object")
    return body
