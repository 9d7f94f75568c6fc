"""Client-side rate limiting: requests wait for a token rather than fail with 10006.

Bybit counts requests per UID per endpoint in a *rolling* one-second window, plus
600 requests per 5 s per IP for all traffic (reference §1.6). A classic refilling
token bucket of capacity L and rate L/s can let 2L requests into one rolling second,
so each ``WindowBucket`` here is a token bucket whose tokens come back exactly one
window after they were spent: never more than ``limit`` requests in any window.
A token counts as spent from ``acquire()`` until ``release()`` (the response came
back) and then for one more window *from the release*: the server saw the request
somewhere between send and reply, so no latency or thread-pool queueing can squeeze
two windows' worth of requests into one of the server's windows. ``slot(path)`` is
the ``async with`` form. A small ``margin_s`` widens the window further.

The venue's own view wins when it is stricter: after each response,
``RateLimiter.observe`` reads ``X-Bapi-Limit-Status`` (requests left) and
``X-Bapi-Limit-Reset-Timestamp`` (venue ms); when nothing is left the endpoint is
closed until the reset time (converted to local time with the clock offset).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Final

#: Per-endpoint limits (requests per rolling second), linear, default tier.
ENDPOINT_LIMITS: Final[dict[str, int]] = {
    "/v5/order/create": 10,
    "/v5/order/amend": 10,
    "/v5/order/cancel": 10,
    "/v5/order/cancel-all": 10,
    "/v5/order/create-batch": 10,
    "/v5/order/amend-batch": 10,
    "/v5/order/cancel-batch": 10,
    "/v5/order/realtime": 50,
    "/v5/order/history": 50,
    "/v5/execution/list": 50,
    "/v5/position/list": 50,
    "/v5/account/wallet-balance": 50,
    "/v5/position/set-leverage": 10,
    "/v5/position/trading-stop": 10,
    "/v5/position/switch-mode": 10,
}
#: Anything else that is signed (unknown endpoint): the strictest documented limit.
DEFAULT_LIMIT: Final = 10
#: The per-IP limit shared by all REST traffic (market endpoints included).
IP_LIMIT: Final = 600
IP_WINDOW_S: Final = 5.0


class WindowBucket:
    """At most ``limit`` requests in flight or released within the last ``window_s`` s."""

    __slots__ = (
        "_clock",
        "_lock",
        "_sleep",
        "_spent",
        "blocked_until",
        "in_flight",
        "limit",
        "waits",
        "window_s",
    )

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit, self.window_s, self._clock, self._sleep = limit, window_s, clock, sleep
        self._spent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.blocked_until = 0.0
        self.waits = 0  # how often a caller had to wait (for tests and metrics)
        self.in_flight = 0

    def delay(self) -> float:
        """Seconds until a token may be free (0 if one is free now). While every token
        is held by a request in flight, a short poll interval is returned."""
        now = self._clock()
        spent = self._spent
        while spent and spent[0] + self.window_s <= now:
            spent.popleft()
        wait = self.blocked_until - now
        if len(spent) + self.in_flight >= self.limit:
            wait = max(wait, spent[0] + self.window_s - now if spent else 0.01)
        return max(0.0, wait)

    async def acquire(self) -> None:
        """Wait for a token and hold it; pair with ``release()``."""
        async with self._lock:  # FIFO: first caller in gets the first token
            wait = self.delay()
            if wait > 0:
                self.waits += 1
            while wait > 0:
                await self._sleep(wait)
                wait = self.delay()
            self.in_flight += 1

    def release(self) -> None:
        """The request is answered (or failed): its token returns one window from now."""
        self.in_flight -= 1
        self._spent.append(self._clock())

    def block_until(self, when: float) -> None:
        """Close the bucket until the local monotonic time ``when``."""
        self.blocked_until = max(self.blocked_until, when)


class RateLimiter:
    """One ``WindowBucket`` per endpoint path plus the shared per-IP bucket."""

    def __init__(
        self,
        scale: float = 1.0,
        margin_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._scale, self._margin, self._clock, self._wall_ms = scale, margin_s, clock, wall_ms
        self._buckets: dict[str, WindowBucket] = {}
        self.ip = WindowBucket(max(1, int(IP_LIMIT * scale)), IP_WINDOW_S + margin_s, clock)

    def total_waits(self) -> int:
        """How often any request had to wait for its endpoint's window (for metrics)."""
        return sum(b.waits for b in self._buckets.values())

    def bucket(self, path: str) -> WindowBucket:
        b = self._buckets.get(path)
        if b is None:
            limit = ENDPOINT_LIMITS.get(path, DEFAULT_LIMIT)
            if path.startswith("/v5/market/"):
                limit = IP_LIMIT  # no per-UID limit; only the IP bucket applies
            b = WindowBucket(max(1, int(limit * self._scale)), 1.0 + self._margin, self._clock)
            self._buckets[path] = b
        return b

    @contextlib.asynccontextmanager
    async def slot(self, path: str) -> AsyncIterator[None]:
        """Hold a token of ``path`` and of the IP bucket for one request."""
        bucket = self.bucket(path)
        await bucket.acquire()
        try:
            await self.ip.acquire()
            try:
                yield
            finally:
                self.ip.release()
        finally:
            bucket.release()

    def observe(self, path: str, headers: Mapping[str, str] | None, offset_ms: int = 0) -> None:
        """Honour the venue's ``X-Bapi-Limit-*`` headers for ``path`` (if any)."""
        if not headers:
            return
        status = _int_header(headers, "X-Bapi-Limit-Status")
        reset = _int_header(headers, "X-Bapi-Limit-Reset-Timestamp")
        if status is None or reset is None or status > 0:
            return
        self.penalise(path, reset, offset_ms)

    def penalise(self, path: str, reset_venue_ms: int | None, offset_ms: int = 0) -> float:
        """Close ``path`` until the venue's reset time; returns the wait in s.

        The wait is capped at one window (1 s): Bybit's per-UID window is a rolling
        second, so a reset further away means our clock offset is stale (the venue
        clock jumped), not that the venue asks for more; a still-limited retry just
        gets another 10006 and waits again. No header: one window."""
        local_reset_ms = (reset_venue_ms - offset_ms) if reset_venue_ms else None
        now_ms = self._wall_ms()
        wait = 1.0 if local_reset_ms is None else max(0.0, (local_reset_ms - now_ms) / 1000)
        wait = min(wait, 1.0) + self._margin
        self.bucket(path).block_until(self._clock() + wait)
        return wait


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None
