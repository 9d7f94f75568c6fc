"""Download Bybit funding rate history (``GET /v5/market/funding/history``) into a CSV.

Bybit returns at most 200 settlements per request, newest first, up to ``endTime``. We
page backwards by moving ``endTime`` to (oldest settlement - 1) until ``startTime`` is
passed, de-duplicate, and pace requests with the same token bucket as klines
(``adapters.historical.pacing``). The CSV (``timestamp,rate``) is what
``replay run --funding`` reads (``adapters.historical.funding``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from .bybit_fetch import DEFAULT_RATE, call_list, kline_session, write_lines_atomically
from .errors import FetchError
from .pacing import TokenBucket

FUNDING_PAGE: Final = 200
FUNDING_HEADER: Final = "timestamp,rate"

#: progress(pages, rates so far)
FundingProgress = Callable[[int, int], None]


def fetch_funding(
    symbol: str,
    start_ms: int,
    end_ms: int,
    *,
    session: Any = None,
    base_url: str | None = None,
    category: str = "linear",
    rate: float = DEFAULT_RATE,
    progress: FundingProgress | None = None,
) -> list[tuple[int, str]]:
    """Settlements with ``start_ms <= time < end_ms``, oldest first: (ms, Bybit's rate text)."""
    if end_ms <= start_ms:
        raise FetchError(f"end ({end_ms}) must be after start ({start_ms})")
    http = session if session is not None else kline_session(base_url)
    bucket = TokenBucket(rate, burst=max(1, int(rate)))
    found: dict[int, str] = {}
    cursor = end_ms - 1
    pages = 0
    while cursor >= start_ms:
        bucket.acquire()
        page, _ = call_list(
            http,
            "get_funding_rate_history",
            f"{symbol} funding ({category})",
            category=category,
            symbol=symbol,
            startTime=start_ms,
            endTime=cursor,
            limit=FUNDING_PAGE,
        )
        pages += 1
        if not page:
            break
        oldest = cursor
        for item in page:
            try:
                ts, value = int(item["fundingRateTimestamp"]), str(item["fundingRate"])
            except (KeyError, TypeError, ValueError):
                raise FetchError(f"unexpected funding history item: {str(item)[:200]}") from None
            oldest = min(oldest, ts)
            if start_ms <= ts < end_ms:
                found.setdefault(ts, value)
        if progress is not None:
            progress(pages, len(found))
        if len(page) < FUNDING_PAGE or oldest <= start_ms or oldest - 1 >= cursor:
            break
        cursor = oldest - 1
    return sorted(found.items())


def write_funding_csv(rows: list[tuple[int, str]], path: str | Path) -> None:
    """Write ``timestamp,rate`` rows atomically (a partial file never replaces a good one)."""
    write_lines_atomically(path, FUNDING_HEADER, (f"{ts},{value}" for ts, value in rows))
