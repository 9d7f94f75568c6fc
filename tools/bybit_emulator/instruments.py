"""``/v5/market/instruments-info``: the traded instrument plus a catalog of other symbols.

Rows have the shape of Bybit's linear instruments-info (``shared/reference/bybit-samples/
rest-market-instruments-info-linear*.json``). The emulator trades one instrument (its
config's spec, first in the list with the candle file's grid); the others are listed so
that ``replay data instruments`` can be tested on a realistic multi-symbol answer with
several cursor pages (``limit``: 1..1000, default 500, as on Bybit; ``cursor`` is this
emulator's ``page_args=N``). Filters ``symbol``, ``status`` and ``baseCoin`` apply
before paging. The catalog's filters are Bybit's as of early 2025, kept as strings.
"""

from __future__ import annotations

from typing import Any, Final

from engine.events import InstrumentSpec

from . import params as P

#: (symbol, tick, qty step, min qty, max qty, max leverage, status, base coin)
CATALOG: Final[tuple[tuple[str, str, str, str, str, str, str, str], ...]] = (
    ("BTCUSDT", "0.10", "0.001", "0.001", "1190.000", "100.00", "Trading", "BTC"),
    ("ETHUSDT", "0.01", "0.01", "0.01", "7240.00", "100.00", "Trading", "ETH"),
    ("SOLUSDT", "0.010", "0.1", "0.1", "79770.0", "100.00", "Trading", "SOL"),
    ("XRPUSDT", "0.0001", "1", "1", "6463500", "75.00", "Trading", "XRP"),
    ("DOGEUSDT", "0.00001", "1", "1", "25464000", "75.00", "Trading", "DOGE"),
    ("1000PEPEUSDT", "0.0000001", "100", "100", "1290821000", "50.00", "Trading", "1000PEPE"),
    ("ADAUSDT", "0.0001", "1", "1", "4340100", "75.00", "Trading", "ADA"),
    ("BIOUSDT", "0.0001", "1", "1", "70000", "5.00", "PreLaunch", "BIO"),
)
DEFAULT_LIMIT: Final = 500
MAX_LIMIT: Final = 1000


def row(
    spec: InstrumentSpec, symbol_id: int, max_price: str, funding_min: int, status: str
) -> dict[str, Any]:
    """One instruments-info row for ``spec`` (Bybit's field names and string values)."""
    decimals = len(spec.tick_size.partition(".")[2])
    pre = status == "PreLaunch"
    return {
        "symbol": spec.symbol,
        "symbolId": symbol_id,
        "contractType": "LinearPerpetual" if funding_min else "LinearFutures",
        "status": status,
        "baseCoin": spec.base_coin,
        "quoteCoin": spec.quote_coin,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(decimals),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": spec.max_leverage,
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": spec.tick_size,
            "maxPrice": max_price,
            "tickSize": spec.tick_size,
        },
        "lotSizeFilter": {
            "maxOrderQty": spec.max_qty,
            "minOrderQty": spec.min_qty,
            "qtyStep": spec.qty_step,
            "postOnlyMaxOrderQty": spec.max_qty,
            "maxMktOrderQty": spec.max_qty,
            "minNotionalValue": spec.min_notional,
        },
        "unifiedMarginTrade": True,
        "fundingInterval": funding_min,
        "settleCoin": spec.quote_coin,
        "copyTrading": "none",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": pre,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": "",
    }


def _max_price(tick: str) -> str:
    """Bybit's ``maxPrice`` pattern: 19999998 ticks (BTCUSDT 0.10 -> 1999999.80)."""
    decimals = len(tick.partition(".")[2])
    ticks = 19_999_998 * int(tick.replace(".", ""))
    text = str(ticks).rjust(decimals + 1, "0")
    return f"{text[:-decimals]}.{text[-decimals:]}" if decimals else text


def all_rows(traded: dict[str, Any], funding_min: int) -> list[dict[str, Any]]:
    """The traded instrument's row first, then the catalog without its symbol."""
    rows = [traded]
    for n, (sym, tick, step, min_qty, max_qty, lev, status, base) in enumerate(CATALOG, 2):
        if sym == traded["symbol"]:
            continue
        spec = InstrumentSpec(
            symbol=sym,
            tick_size=tick,
            qty_step=step,
            min_qty=min_qty,
            min_notional="5",
            max_qty=max_qty,
            base_coin=base,
            max_leverage=lev,
        )
        rows.append(row(spec, n, _max_price(tick), funding_min, status))
    return rows


def answer(rows: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any]:
    """Filter ``rows`` by the request's ``symbol``/``status``/``baseCoin`` and page them."""
    P.check_category(p)
    symbol, status, base = P.text(p, "symbol"), P.text(p, "status"), P.text(p, "baseCoin")
    kept = [
        r
        for r in rows
        if (not symbol or r["symbol"] == symbol)
        and (not status or r["status"] == status)
        and (not base or r["baseCoin"] == base)
    ]
    chunk, nxt = P.page(kept, P.cursor_offset(p), P.limit(p, DEFAULT_LIMIT, MAX_LIMIT))
    return {"category": "linear", "list": chunk, "nextPageCursor": nxt}
