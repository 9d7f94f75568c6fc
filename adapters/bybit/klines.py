"""The one pager over ``GET /v5/market/kline``, without I/O (sync and async callers share it).

Bybit answers at most 1000 klines per request, newest first. ``KlinePager`` walks
backwards: each ``request()`` says which ``start``/``end``/``limit`` to ask for next
(None when done), ``add(rows)`` takes the answer's ``list``. It stops at ``start_ms``,
after ``n`` candles, on a short page (the venue has no older ones), or when a page adds
nothing new; candles two pages both contain are kept once. ``rows(tf_ms, now_ms)``
returns what was collected, oldest first, only candles that had closed by ``now_ms``
(the newest row may still be open), the last ``n`` when ``n`` was given.

Used by ``adapters.historical.bybit_fetch`` (``replay data fetch``, pybit, sync) and by
``BybitVenue.recent_candles`` / ``candles_since`` (warm-up and back-fill, async).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

PAGE_LIMIT: Final = 1000

Row = list[str]


class KlinePager:
    """Backwards through the klines in ``[start_ms, end_ms)``, or the newest ``n``."""

    def __init__(
        self, *, start_ms: int | None = None, end_ms: int | None = None, n: int | None = None
    ) -> None:
        self.start_ms, self.end_ms, self.n = start_ms, end_ms, n
        self.found: dict[int, Row] = {}
        self.cursor = end_ms - 1 if end_ms is not None else None  # newest open time wanted
        self.pages = 0
        self.server_ms = 0  # the newest server time an answer carried (0: not known)
        self._asked = PAGE_LIMIT
        self._done = False

    def request(self) -> dict[str, int] | None:
        """The next request's parameters, or None when the pager is done."""
        if self._done or (self.n is not None and len(self.found) >= self.n):
            return None
        if self.start_ms is not None and self.cursor is not None and self.cursor < self.start_ms:
            return None
        # One more than still needed: the newest row may be the candle still open.
        self._asked = (
            PAGE_LIMIT if self.n is None else min(PAGE_LIMIT, self.n - len(self.found) + 1)
        )
        params = {"limit": self._asked}
        if self.start_ms is not None:
            params["start"] = self.start_ms
        if self.cursor is not None:
            params["end"] = self.cursor
        return params

    def add(self, page: Sequence[Sequence[Any]], server_ms: int = 0) -> None:
        """Take one answer's rows (Bybit's 7-string arrays, any order)."""
        self.pages += 1
        self.server_ms = max(self.server_ms, server_ms)
        if not page:
            self._done = True
            return
        oldest = min(int(row[0]) for row in page)
        fresh = 0
        for row in page:
            ts = int(row[0])
            if self._within(ts) and ts not in self.found:
                self.found[ts] = [str(x) for x in row[:7]]
                fresh += 1
        stuck = self.cursor is not None and oldest - 1 >= self.cursor
        at_start = self.start_ms is not None and oldest <= self.start_ms
        if not fresh or len(page) < self._asked or at_start or stuck:
            self._done = True
        self.cursor = oldest - 1

    def _within(self, ts: int) -> bool:
        if self.start_ms is not None and ts < self.start_ms:
            return False
        return self.end_ms is None or ts < self.end_ms

    def rows(self, tf_ms: int, now_ms: int = 0) -> list[Row]:
        """The collected rows, oldest first, closed by ``now_ms`` (else the server's time)."""
        now = now_ms or self.server_ms
        rows = [self.found[ts] for ts in sorted(self.found)]
        if now:
            rows = [r for r in rows if int(r[0]) + tf_ms <= now]
        return rows[-self.n :] if self.n is not None else rows
