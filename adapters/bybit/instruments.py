"""Every linear instrument Bybit lists: ``/v5/market/instruments-info`` page by page.

Reuses the adapter's REST client: ``BybitRest.pages`` follows ``nextPageCursor``, its
``RateLimiter`` paces the requests (scaled so this market endpoint sees at most ``rate``
requests per second) and retries a rate-limited or lost request. No keys: the endpoint
is public. Rows that do not parse as an instrument (no tick size or qty step) are
skipped and counted rather than failing the whole download.
"""

from __future__ import annotations

from typing import Final

from adapters.bybit.config import BybitConfig
from adapters.bybit.convert import instrument_spec
from adapters.bybit.errors import MalformedMessage
from adapters.bybit.ratelimit import IP_LIMIT, RateLimiter
from adapters.bybit.rest import BybitRest
from engine.events import InstrumentSpec

PATH: Final = "/v5/market/instruments-info"
MAX_PAGE: Final = 1000  # Bybit's limit for instruments-info


async def fetch_instruments(
    base_url: str,
    *,
    rate: float = 10.0,
    page_size: int = MAX_PAGE,
    attempts: int = 3,
) -> tuple[list[InstrumentSpec], int]:
    """(every listed linear instrument, how many rows were skipped as malformed)."""
    config = BybitConfig(
        rest_url=base_url,  # keyless market data: the environment only names the host
        max_attempts=attempts,
        backoff_base_s=0.1,
        backoff_max_s=1.0,
    )
    limiter = RateLimiter(scale=min(1.0, rate / IP_LIMIT))
    rest = BybitRest(config, None, limiter=limiter)
    rows = await rest.pages(PATH, {"category": "linear", "limit": page_size})
    specs: dict[str, InstrumentSpec] = {}
    skipped = 0
    for row in rows:
        try:
            spec = instrument_spec(row)
        except MalformedMessage:
            skipped += 1
            continue
        if spec.symbol:
            specs[spec.symbol] = spec
    return [specs[s] for s in sorted(specs)], skipped


def mainnet_url() -> str:
    """Bybit's mainnet REST host (pybit's constant, via the adapter's config); only its
    name is used here: nothing is traded and no keys are read."""
    return BybitConfig(environment="live", allow_live=True).urls()[0]
