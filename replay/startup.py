"""Start-up against the venue: retried with backoff, given up after a bounded, stated time.

Connecting (clock sync, instrument, stream subscription) is the first thing the
daemon asks of the venue, often right after a crash while the venue is slow. A
failure the retry table calls transient (timeouts, connection errors, HTTP 5xx,
rate limits, clock errors, retries exhausted) is retried with exponential backoff
until ``limit_s`` have passed; then ``VenueUnreachable`` says what failed, for how
long and the last error, and the daemon exits ``VENUE_UNREACHABLE`` (75, sysexits'
EX_TEMPFAIL: try again later). A failure retrying cannot cure (bad keys, invalid
parameters) is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from adapters.bybit.errors import BybitError, RetriesExhausted
from adapters.bybit.retry import Action, Backoff, classify

T = TypeVar("T")
log = logging.getLogger("replay.daemon")

VENUE_UNREACHABLE: Final = 75
DEFAULT_LIMIT_S: Final = 120.0


class VenueUnreachable(Exception):
    """Start-up kept failing for ``limit_s`` seconds; ``last`` is the last failure."""

    def __init__(self, what: str, limit_s: float, attempts: int, last: BaseException) -> None:
        super().__init__(
            f"venue unreachable: {what} failed {attempts} times in {limit_s:g} s; "
            f"last error: {last}"
        )
        self.what, self.limit_s, self.attempts, self.last = what, limit_s, attempts, last


def transient(exc: BybitError) -> bool:
    """Whether retrying may help (see ``adapters.bybit.retry``)."""
    return isinstance(exc, RetriesExhausted) or classify(exc) is not Action.FATAL


async def retry_startup(
    what: str,
    job: Callable[[], Awaitable[T]],
    *,
    limit_s: float = DEFAULT_LIMIT_S,
    backoff: Backoff | None = None,
) -> T:
    """``await job()``, retried on transient venue failures for at most ``limit_s``."""
    backoff = backoff or Backoff(base_s=0.5, max_s=15.0)
    deadline = time.monotonic() + limit_s
    attempt = 0
    while True:
        try:
            return await job()
        except BybitError as exc:
            if not transient(exc):
                raise
            attempt += 1
            wait = min(backoff.delay(attempt - 1), max(0.0, deadline - time.monotonic()))
            if wait <= 0:
                raise VenueUnreachable(what, limit_s, attempt, exc) from None
            log.warning("%s failed (%s); retrying in %.1f s", what, exc, wait)
            await asyncio.sleep(wait)
