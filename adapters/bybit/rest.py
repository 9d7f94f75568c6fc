"""Signed REST calls through pybit, with our own rate limiting, retries and clock.

pybit (``pybit.unified_trading.HTTP``) builds, signs and sends each request; this
module decides *when* (``RateLimiter``), *whether again* (``retry.classify``) and with
*which timestamp* (``ExchangeClock``). pybit is configured so that it never retries by
itself: ``retry_codes`` is a set holding only a code Bybit never sends (an empty set
would mean pybit's defaults), ``max_retries=1`` and ``force_retry=False``, so every
10002/10006/network failure comes back to us as an exception and is visible.

pybit stamps requests with its own ``time.time()`` (``_prepare_headers``, §6.2 of the
reference). ``ClockedHTTP`` overrides exactly that method to stamp ``clock.now_ms()``
(local time + measured venue offset) and sign with it; nothing else of pybit changes.
pybit has no base-URL option, so ``endpoint`` is set after construction (§6.1).

Calls run in worker threads (``asyncio.to_thread``): pybit is blocking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from adapters.bybit.clock import ExchangeClock, server_ms_from_time_result
from adapters.bybit.config import BybitConfig
from adapters.bybit.errors import ApiError, BybitError, RetriesExhausted, TransportError
from adapters.bybit.keys import ApiKeys
from adapters.bybit.ratelimit import RateLimiter
from adapters.bybit.retry import Action, Backoff, classify
from engine.events import ClockOffset

log = logging.getLogger(__name__)

#: path -> pybit method name. Only these endpoints are used.
METHODS: Final[dict[str, str]] = {
    "/v5/market/time": "get_server_time",
    "/v5/market/kline": "get_kline",
    "/v5/market/instruments-info": "get_instruments_info",
    "/v5/order/create": "place_order",
    "/v5/order/amend": "amend_order",
    "/v5/order/cancel": "cancel_order",
    "/v5/order/create-batch": "place_batch_order",
    "/v5/order/amend-batch": "amend_batch_order",
    "/v5/order/cancel-batch": "cancel_batch_order",
    "/v5/order/cancel-all": "cancel_all_orders",
    "/v5/order/realtime": "get_open_orders",
    "/v5/order/history": "get_order_history",
    "/v5/execution/list": "get_executions",
    "/v5/position/list": "get_positions",
    "/v5/account/wallet-balance": "get_wallet_balance",
    "/v5/position/trading-stop": "set_trading_stop",
    "/v5/position/set-leverage": "set_leverage",  # idempotent: retried like a read
    "/v5/account/set-margin-mode": "set_margin_mode",
}
#: batch path -> its single form. A batch's per-item answers are in the envelope's
#: ``retExtInfo.list``: for these paths the result carries it as ``result["retExtInfo"]``.
BATCH_PATHS: Final[dict[str, str]] = {
    "/v5/order/create-batch": "/v5/order/create",
    "/v5/order/amend-batch": "/v5/order/amend",
    "/v5/order/cancel-batch": "/v5/order/cancel",
}
WRITE_PATHS: Final = frozenset(
    {
        *BATCH_PATHS,
        "/v5/order/create",
        "/v5/order/amend",
        "/v5/order/cancel",
        "/v5/order/cancel-all",
        "/v5/position/trading-stop",
    }
)
#: One attempt of a request: the envelope's result, or ApiError / TransportError.
Once = Callable[[str, Mapping[str, Any] | None], Awaitable[dict[str, Any]]]
_NEVER_SENT_CODE: Final = -424242  # makes pybit's retry set non-empty yet never matching


def result_of(path: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A reply's ``result`` (REST; ``data`` over the Trade API); a batch's carries the
    per-item answers too (``BATCH_PATHS``)."""
    result = body.get(key)
    out = dict(result) if isinstance(result, dict) else {}
    if path in BATCH_PATHS:
        ext = body.get("retExtInfo")
        out["retExtInfo"] = ext if isinstance(ext, dict) else {}
    return out


class ClockedHTTP(HTTP):
    """pybit's HTTP session, stamping requests with the exchange clock, secret-free repr."""

    now_ms: Callable[[], int]

    def _prepare_headers(
        self, payload: Any, recv_window: int, content_type: str = "application/json"
    ) -> dict[str, str]:
        if isinstance(payload, bytes):  # file uploads: not used here, keep pybit's own
            return super()._prepare_headers(payload, recv_window, content_type)
        timestamp = self.now_ms()
        return {
            "Content-Type": content_type,
            "X-BAPI-API-KEY": self.api_key,
            "X-BAPI-SIGN": self._auth(
                payload=payload, recv_window=recv_window, timestamp=timestamp
            ),
            "X-BAPI-SIGN-TYPE": "2",
            "X-BAPI-TIMESTAMP": str(timestamp),
            "X-BAPI-RECV-WINDOW": str(recv_window),
        }

    def __repr__(self) -> str:
        return f"ClockedHTTP(endpoint={self.endpoint!r})"

    __str__ = __repr__


class RestStats:
    """Counters a test or a metrics page can read."""

    __slots__ = ("attempts", "calls", "clock_resyncs", "rate_limited", "transport_errors")

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.attempts = self.rate_limited = self.clock_resyncs = self.transport_errors = 0


class BybitRest:
    """Awaitable, rate-limited, retried REST calls returning the envelope's ``result``."""

    def __init__(
        self,
        config: BybitConfig,
        keys: ApiKeys | None,
        clock: ExchangeClock | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or ExchangeClock()
        self.limiter = limiter or RateLimiter(scale=config.rate_limit_scale)
        self.backoff = Backoff(config.backoff_base_s, config.backoff_max_s, config.jitter_seed)
        self.stats = RestStats()
        self._clock_lock = asyncio.Lock()
        self.on_clock: Callable[[ClockOffset], None] | None = None  # every new offset
        #: every response body received (path, params, envelope, ok): the wire capture
        self.on_body: (
            Callable[[str, Mapping[str, Any] | None, dict[str, Any], bool], None] | None
        ) = None
        http = ClockedHTTP(
            api_key=keys.key if keys else None,
            api_secret=keys.secret.reveal() if keys else None,
            recv_window=config.recv_window_ms,
            timeout=config.http_timeout_s,  # pybit annotates int, accepts float
            max_retries=1,
            retry_delay=0,
            retry_codes={_NEVER_SENT_CODE},
            force_retry=False,
            return_response_headers=True,
            log_requests=False,
        )
        http.now_ms = self.clock.now_ms
        http.endpoint = config.urls()[0]
        self._http = http

    def __repr__(self) -> str:
        return f"BybitRest({self.config.environment}, {self._http.endpoint})"

    async def call(
        self, path: str, params: Mapping[str, Any] | None = None, via: Once | None = None
    ) -> dict[str, Any]:
        """One logical request. Safe failures (10006, 10002) are retried; an AMBIGUOUS
        failure is retried for reads but raised for writes (the caller must look up
        whether the write happened); FATAL ones raise ``ApiError``/``TransportError``.
        ``via`` sends each attempt another way (the WebSocket Trade API) under the same
        rules."""
        write = path in WRITE_PATHS
        last: BybitError | None = None
        once = via or self._once
        for attempt in range(self.config.max_attempts):
            generation = self.clock.generation
            try:
                return await once(path, params)
            except (ApiError, TransportError) as exc:
                last = exc
                action = classify(exc)
                if action is Action.FATAL or (write and action is Action.AMBIGUOUS):
                    raise
                if action is Action.CLOCK:
                    await self.sync_clock(stale_generation=generation)
                    continue
                if action is Action.AMBIGUOUS:
                    await asyncio.sleep(self.backoff.delay(attempt))
                # RATE_LIMITED: the limiter was closed until the reset; acquire() waits.
        assert last is not None
        raise RetriesExhausted(path, self.config.max_attempts, last)

    async def _once(self, path: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        self.stats.attempts += 1
        self.stats.calls[path] = self.stats.calls.get(path, 0) + 1
        method = getattr(self._http, METHODS[path])
        kwargs = dict(params or {})  # pybit mutates the dict it is given
        try:
            async with self.limiter.slot(path):
                if path == "/v5/market/time":
                    reply = await asyncio.to_thread(method)
                else:
                    reply = await asyncio.to_thread(method, **kwargs)
        except InvalidRequestError as exc:
            headers = exc.resp_headers or {}
            code = int(exc.status_code)
            if code == 10006:
                self.stats.rate_limited += 1
                reset = headers.get("X-Bapi-Limit-Reset-Timestamp")
                wait = self.limiter.penalise(
                    path,
                    int(reset) if reset and str(reset).isdigit() else None,
                    self.clock.offset_ms,
                )
                log.info("%s rate limited by the venue; waiting %.3f s", path, wait)
            else:
                self.limiter.observe(path, headers, self.clock.offset_ms)
            if self.on_body is not None:
                self.on_body(path, params, {"retCode": code, "retMsg": str(exc.message)}, False)
            raise ApiError(path, code, str(exc.message)) from None
        except FailedRequestError as exc:
            self.stats.transport_errors += 1
            status = int(exc.status_code or 0)
            if status == 429:  # system-level protection: close the endpoint for a window
                self.stats.rate_limited += 1
                self.limiter.penalise(path, None)
            raise TransportError(path, str(exc.message), status) from None
        except (requests.exceptions.RequestException, OSError) as exc:
            self.stats.transport_errors += 1
            raise TransportError(path, type(exc).__name__) from None
        body, _elapsed, headers = reply
        self.limiter.observe(path, headers, self.clock.offset_ms)
        if self.on_body is not None and isinstance(body, dict):
            self.on_body(path, params, body, True)
        return result_of(path, body, "result")

    async def sync_clock(self, stale_generation: int | None = None) -> ClockOffset | None:
        """Measure the venue offset (several samples); returns the ``ClockOffset`` event.

        With ``stale_generation`` (the clock generation a failed request was signed
        with) the sync is skipped, returning None, if another caller already re-synced
        since then: a burst of 10002 failures costs one measurement, not one each."""
        async with self._clock_lock:
            if stale_generation is not None and self.clock.generation != stale_generation:
                return None
            self.stats.clock_resyncs += 1
            ev = await self.clock.sync(self._server_ms, self.config.clock_samples)
            log.info("clock offset %d ms (rtt %d ms)", ev.offset_ms, ev.rtt_ms)
            if self.on_clock is not None:
                self.on_clock(ev)
            return ev

    async def _server_ms(self) -> int:
        return server_ms_from_time_result(await self._once("/v5/market/time", None))

    async def pages(
        self, path: str, params: Mapping[str, Any], max_pages: int = 100
    ) -> list[dict[str, Any]]:
        """All ``list`` rows of a cursor-paged endpoint (``nextPageCursor`` "" or absent
        or repeated ends it; ``max_pages`` bounds a misbehaving server)."""
        rows: list[dict[str, Any]] = []
        cursor = ""
        seen: set[str] = set()
        for _ in range(max_pages):
            query = dict(params)
            if cursor:
                query["cursor"] = cursor
            result = await self.call(path, query)
            rows.extend(r for r in result.get("list") or [] if isinstance(r, dict))
            cursor = str(result.get("nextPageCursor") or "")
            if not cursor or cursor in seen:
                break
            seen.add(cursor)
        return rows
