"""A token bucket: callers wait for a token instead of hitting the venue's rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens/s, at most ``burst`` saved up; ``acquire`` blocks until one is free."""

    __slots__ = ("_clock", "_sleep", "_stamp", "_tokens", "burst", "rate")

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate={rate} must be > 0 and burst={burst} >= 1")
        self.rate, self.burst = float(rate), burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._stamp = clock()

    def acquire(self) -> float:
        """Take one token, sleeping first if none is available; returns the time waited (s)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        waited = 0.0
        if self._tokens < 1.0:
            waited = (1.0 - self._tokens) / self.rate
            self._sleep(waited)
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens = max(self._tokens, 1.0)  # a short sleep must not starve the caller
        self._tokens -= 1.0
        return waited
