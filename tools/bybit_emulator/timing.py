"""When closing klines left the emulator and order requests reached it, for latency benches.

Both are ``time.perf_counter()`` readings in the emulator's process, so a driver in the
same process (tools/bench_daemon.py) can measure candle-close to order-on-the-wire
latency as the venue sees it, including the daemon's durable log commit. The emulator's
own work is left out at both ends: a kline is stamped when its encoded frame is handed to
the socket (not when it is queued for the connection's sender), an order when its frame
or HTTP request arrived (before it is parsed, checked and matched).
"""

from __future__ import annotations

import json
import time


class WireTimes:
    def __init__(self) -> None:
        self.kline_closed: dict[int, float] = {}  # candle close_ms -> when its final kline left
        self.order_arrived: dict[str, float] = {}  # orderLinkId -> when /v5/order/create arrived
        self.creates: dict[str, int] = {}  # orderLinkId -> create requests (REST or Trade API)

    def closed(self, close_ms: int) -> None:
        self.kline_closed.setdefault(close_ms, time.perf_counter())

    def create_request(self, body: str, now: float | None = None) -> None:
        """A REST ``/v5/order/create`` body, received at ``now`` (default: now)."""
        now = time.perf_counter() if now is None else now
        try:
            params = json.loads(body)
        except ValueError:
            return
        if isinstance(params, dict):
            self.create_item(params, now)

    def create_item(self, params: dict[str, object], now: float | None = None) -> None:
        """One order create (a single request, or an item of a batch) arrived at ``now``."""
        now = time.perf_counter() if now is None else now
        link = params.get("orderLinkId")
        if isinstance(link, str) and link:
            self.order_arrived.setdefault(link, now)
            self.creates[link] = self.creates.get(link, 0) + 1
