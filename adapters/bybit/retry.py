"""What to do about a failed request, by error class, and how long to wait.

=================  ==========================================  =======================
class              errors                                      action
=================  ==========================================  =======================
RATE_LIMITED       retCode 10006, HTTP 429; Trade API 10429    wait for reset, retry
                   (system protection), 20003 (too frequent)
CLOCK              retCode 10002                               resync clock, retry
AMBIGUOUS          timeout, connection error, HTTP 5xx, bad    back off; a *write* is
                   JSON, retCode 10000/10016 (server busy);    first looked up, a read
                   Trade API 10019 (restarting), 20006         is simply retried
                   (reqId seen before)
FATAL              everything else (110007 balance, 10001      never retried; an order
                   params, 110017 reduce-only, 10003/10004     command becomes a
                   auth, HTTP 403 IP ban, 4xx ...)             rejection event
=================  ==========================================  =======================

RATE_LIMITED and CLOCK failures were refused by the venue before it did anything,
so resending is safe. AMBIGUOUS ones may or may not have been applied.
"""

from __future__ import annotations

import enum
import random
from typing import Final

from adapters.bybit.errors import ApiError, BybitError, TransportError

RATE_LIMIT_CODES: Final = frozenset({10006, 10429, 20003})
CLOCK_CODES: Final = frozenset({10002})
SERVER_BUSY_CODES: Final = frozenset({10000, 10016, 10019, 20006})
#: a create refused because the orderLinkId exists: an earlier attempt got through (looked up)
DUPLICATE_LINK_ID: Final = 110072


class Action(enum.Enum):
    RATE_LIMITED = "rate_limited"
    CLOCK = "clock"
    AMBIGUOUS = "ambiguous"
    FATAL = "fatal"


def classify(error: BybitError) -> Action:
    """The retry class of one failure (see the module table)."""
    if isinstance(error, ApiError):
        if error.code in RATE_LIMIT_CODES:
            return Action.RATE_LIMITED
        if error.code in CLOCK_CODES:
            return Action.CLOCK
        if error.code in SERVER_BUSY_CODES:
            return Action.AMBIGUOUS
        return Action.FATAL
    if isinstance(error, TransportError):
        if error.status == 429:
            return Action.RATE_LIMITED
        if error.status == 0 or error.status >= 500 or error.status == 409:
            return Action.AMBIGUOUS  # no status: timeout / connection; 409: pybit's bad JSON
        return Action.FATAL  # 400/401/403/404: retrying cannot help
    return Action.FATAL


class Backoff:
    """Exponential backoff with "equal jitter": half fixed, half random.

    ``delay(n)`` for the n-th retry (0-based) is in ``[d/2, d]`` with
    ``d = min(max_s, base_s * 2**n)``. The jitter comes from a seeded ``random.Random``
    (adapters may be random; the engine may not), so a test can predict it.
    """

    __slots__ = ("base_s", "max_s", "_rng")

    def __init__(self, base_s: float, max_s: float, seed: int = 0) -> None:
        self.base_s, self.max_s = base_s, max_s
        self._rng = random.Random(seed)

    def delay(self, attempt: int) -> float:
        d = min(self.max_s, self.base_s * (2 ** min(attempt, 30)))
        return d / 2 + self._rng.random() * d / 2
