"""Exchange clock: the venue's time as local time plus a measured offset.

Each sample brackets one ``/v5/market/time`` call between two local readings; the
server stamped its time somewhere in between, so the best guess is the midpoint and
the error is at most half the round trip. Of several samples the one with the lowest
RTT wins (least queueing noise). Request timestamps (``X-BAPI-TIMESTAMP``) and WS auth
expiries use ``now_ms()``, so a skewed local clock does not cause 10002 rejections.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec

from engine.events import ClockOffset


def wall_ms() -> int:
    """The local wall clock in ms (the one thing this module reads from the OS)."""
    return time.time_ns() // 1_000_000


class ClockSample(msgspec.Struct, frozen=True, gc=False):
    """One round trip: local send time, server time, local receive time (all ms)."""

    sent_ms: int
    server_ms: int
    received_ms: int

    @property
    def rtt_ms(self) -> int:
        return self.received_ms - self.sent_ms

    @property
    def offset_ms(self) -> int:
        """server - local at the midpoint of the round trip (floor of the half ms)."""
        return self.server_ms - (self.sent_ms + self.received_ms) // 2


def best_sample(samples: list[ClockSample]) -> ClockSample:
    """The lowest-RTT sample (the first one on a tie); samples with RTT < 0 are dropped."""
    good = [s for s in samples if s.rtt_ms >= 0]
    if not good:
        raise ValueError("no usable clock sample (all had a negative round trip)")
    return min(good, key=lambda s: s.rtt_ms)


class ExchangeClock:
    """Owns the current offset; ``now_ms()`` is the venue's time as we best know it."""

    __slots__ = ("_local", "generation", "offset_ms", "rtt_ms", "synced_at_ms")

    def __init__(self, local: Callable[[], int] = wall_ms) -> None:
        self._local = local
        self.offset_ms = 0
        self.rtt_ms = 0
        self.synced_at_ms = 0
        self.generation = 0  # how many syncs completed (lets callers skip redundant ones)

    def local_ms(self) -> int:
        return self._local()

    def now_ms(self) -> int:
        return self._local() + self.offset_ms

    async def sync(
        self, fetch_server_ms: Callable[[], Awaitable[int]], samples: int = 5
    ) -> ClockOffset:
        """Take ``samples`` round trips, keep the best, and return it as an event."""
        taken: list[ClockSample] = []
        for _ in range(max(1, samples)):
            sent = self._local()
            server = await fetch_server_ms()
            taken.append(ClockSample(sent, server, self._local()))
        best = best_sample(taken)
        self.offset_ms, self.rtt_ms = best.offset_ms, best.rtt_ms
        self.synced_at_ms = self.now_ms()
        self.generation += 1
        return ClockOffset(
            ts=self.synced_at_ms, offset_ms=self.offset_ms, rtt_ms=self.rtt_ms, samples=len(taken)
        )


def server_ms_from_time_result(result: dict[str, object]) -> int:
    """``/v5/market/time`` result -> server ms (from timeNano, else timeSecond)."""
    nano = str(result.get("timeNano") or "")
    if nano.isdigit():
        return int(nano) // 1_000_000
    sec = str(result.get("timeSecond") or "")
    if sec.isdigit():
        return int(sec) * 1000
    raise ValueError(f"server time result without timeNano/timeSecond: {sorted(result)}")
