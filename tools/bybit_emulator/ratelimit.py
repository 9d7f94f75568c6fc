"""Per-endpoint request budgets with Bybit's ``X-Bapi-Limit*`` headers (reference §1.6).

Each signed endpoint has a rolling 1-second window per UID (there is one account here);
``/v5/market/*`` only has the IP budget (600 requests per 5 s). A signed request over budget
gets retCode 10006, a market-data request HTTP 403 (as Bybit answers an IP-limit breach); both
carry an ``X-Bapi-Limit-Reset-Timestamp`` strictly in the future (pybit sleeps until that
instant and crashes on a past one). Rejected requests do not consume budget.
"""

from __future__ import annotations

from collections import deque

import msgspec


class Budget(msgspec.Struct, frozen=True):
    """``limit`` requests per ``window_ms``."""

    limit: int
    window_ms: int = 1000


ORDER_WRITE = Budget(10)
ACCOUNT_READ = Budget(50)
MARKET_IP = Budget(600, 5000)

#: path -> budget; a path not listed here uses ``MARKET_IP``.
BUDGETS: dict[str, Budget] = {
    "/v5/order/create": ORDER_WRITE,
    "/v5/order/amend": ORDER_WRITE,
    "/v5/order/cancel": ORDER_WRITE,
    "/v5/order/cancel-all": ORDER_WRITE,
    "/v5/order/create-batch": ORDER_WRITE,  # its own budget, counted per request
    "/v5/order/amend-batch": ORDER_WRITE,
    "/v5/order/cancel-batch": ORDER_WRITE,
    "/v5/position/trading-stop": ORDER_WRITE,
    "/v5/order/realtime": ACCOUNT_READ,
    "/v5/order/history": ACCOUNT_READ,
    "/v5/execution/list": ACCOUNT_READ,
    "/v5/position/list": ACCOUNT_READ,
    "/v5/account/wallet-balance": ACCOUNT_READ,
}


class Verdict(msgspec.Struct, frozen=True):
    """Outcome of one request against its budget, ready to become headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Bapi-Limit": str(self.limit),
            "X-Bapi-Limit-Status": str(self.remaining),
            "X-Bapi-Limit-Reset-Timestamp": str(self.reset_ms),
        }


class RateLimiter:
    """Sliding-window counters, one per budget key (endpoint path or the market IP bucket)."""

    def __init__(
        self, budgets: dict[str, Budget] | None = None, market: Budget = MARKET_IP
    ) -> None:
        self.budgets = dict(BUDGETS if budgets is None else budgets)
        self.market = market  # the per-IP budget every unlisted path (market data) shares
        self._hits: dict[str, deque[int]] = {}

    def budget_for(self, path: str) -> tuple[str, Budget]:
        budget = self.budgets.get(path)
        if budget is None:
            return "market", self.market
        return path, budget

    def check(self, path: str, now_ms: int) -> Verdict:
        """Count a request to ``path`` at ``now_ms`` if the budget allows it."""
        key, budget = self.budget_for(path)
        hits = self._hits.setdefault(key, deque())
        horizon = now_ms - budget.window_ms
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= budget.limit:
            reset = max(hits[0] + budget.window_ms, now_ms + 1)
            return Verdict(False, budget.limit, 0, reset)
        hits.append(now_ms)
        return Verdict(True, budget.limit, budget.limit - len(hits), now_ms)

    def forced_denial(self, path: str, now_ms: int, reset_in_ms: int) -> Verdict:
        """A 10006 verdict injected by a fault (budget untouched), resetting in the future."""
        _, budget = self.budget_for(path)
        return Verdict(False, budget.limit, 0, now_ms + max(1, reset_in_ms))
