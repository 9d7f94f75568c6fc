"""Download Bybit v5 klines over REST (pybit), backwards page by page, into our CSV.

``GET /v5/market/kline`` returns at most 1000 candles, newest first. The paging is
the Bybit adapter's one kline pager (``adapters.bybit.klines.KlinePager``): ``[start,
end)`` backwards page by page, candles two pages both contain kept once, only candles
that had closed by the server's clock (the response's ``time``). Requests are paced
with a token bucket. Market endpoints are limited per IP (600 requests / 5 s, bybit-v5.md
§1.6); the default 10 requests/s stays far below that and is polite to a venue
shared with a live daemon. pybit itself retries on retCode 10006 (rate limited).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from adapters.bybit.klines import PAGE_LIMIT, KlinePager
from engine.timeframes import timeframe_ms

from .errors import FetchError
from .pacing import TokenBucket

INTERVALS: Final = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W")
CSV_HEADER: Final = "open_time,open,high,low,close,volume,turnover"
DEFAULT_RATE: Final = 10.0

Row = list[str]
#: progress(pages, candles so far, candles expected)
Progress = Callable[[int, int, int], None]


def kline_session(base_url: str | None = None, *, timeout: int = 10) -> Any:
    """A pybit HTTP session for public market data, optionally pointed at another host."""
    from pybit.unified_trading import HTTP

    session = HTTP(testnet=False, timeout=timeout, retry_delay=1, max_retries=3)
    if base_url:
        session.endpoint = base_url.rstrip("/")
    return session


def fetch_klines(
    symbol: str,
    interval: str,
    start_ms: int,
    end_ms: int,
    *,
    session: Any = None,
    base_url: str | None = None,
    category: str = "linear",
    rate: float = DEFAULT_RATE,
    progress: Progress | None = None,
) -> list[Row]:
    """Closed candles with ``start_ms <= startTime < end_ms``, oldest first, as Bybit's strings.

    Raises ``FetchError`` for an unknown interval, an empty range, a refused
    request (bad symbol: Bybit retCode 10001) or a network/HTTP failure.
    """
    if interval not in INTERVALS:
        raise FetchError(f"interval {interval!r}: expected one of {', '.join(INTERVALS)}")
    if end_ms <= start_ms:
        raise FetchError(f"end ({end_ms}) must be after start ({start_ms})")
    tf = timeframe_ms(interval)
    http = session if session is not None else kline_session(base_url)
    bucket = TokenBucket(rate, burst=max(1, int(rate)))
    expected = -(-(end_ms - start_ms) // tf)
    pager = KlinePager(start_ms=start_ms, end_ms=end_ms)
    while (params := pager.request()) is not None:
        bucket.acquire()
        page, now = _page(http, category, symbol, interval, params["start"], params["end"])
        pager.add(page, now)
        if progress is not None:
            progress(pager.pages, len(pager.found), expected)
    return pager.rows(tf)


def write_kline_csv(rows: list[Row], path: str | Path) -> None:
    """Write rows in our CSV format (open_time ms and Bybit's strings), atomically."""
    lines = (",".join(row) + ("" if len(row) == 7 else ",0") for row in rows)
    write_lines_atomically(path, CSV_HEADER, lines)


def write_lines_atomically(path: str | Path, header: str, lines: Iterable[str]) -> None:
    """A header and lines into ``path``; a partial file never replaces a good one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="") as out:
            out.write(header + "\n")
            for line in lines:
                out.write(line + "\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def call_list(http: Any, method: str, what: str, **params: Any) -> tuple[list[Any], int]:
    """One pybit market request: its ``result.list`` and the server ``time``, or a
    ``FetchError`` saying what was refused (``what``: e.g. "BTCUSDT 5 (linear)")."""
    from pybit.exceptions import FailedRequestError, InvalidRequestError

    try:
        resp = getattr(http, method)(**params)
    except InvalidRequestError as exc:
        raise FetchError(
            f"Bybit refused the request for {what}: {exc.message} (retCode {exc.status_code})"
        ) from None
    except FailedRequestError as exc:
        raise FetchError(f"Bybit request failed: {exc.message} (HTTP {exc.status_code})") from None
    except OSError as exc:  # requests' ConnectionError/Timeout derive from OSError
        raise FetchError(f"cannot reach {getattr(http, 'endpoint', 'Bybit')}: {exc}") from None
    result = resp.get("result") or {}
    rows = result.get("list")
    if not isinstance(rows, list):
        raise FetchError(f"unexpected {method} response: {str(resp)[:200]}")
    return rows, int(resp.get("time") or 0)


def _page(
    http: Any, category: str, symbol: str, interval: str, start_ms: int, end_ms: int
) -> tuple[list[Row], int]:
    return call_list(
        http,
        "get_kline",
        f"{symbol} {interval} ({category})",
        category=category,
        symbol=symbol,
        interval=interval,
        start=start_ms,
        end=end_ms,
        limit=PAGE_LIMIT,
    )
