"""Read-only endpoints: market data and account queries over ``EmulatorState``.

Each function takes the state and the request's parameters and returns the ``result`` object
(or raises ``ApiError``). Lists are newest first and paginated with opaque cursors as Bybit's
are. Simplifications (documented choices): kline serves only the candle file's own interval
and only bars already played (no partial bar); order history has no 7-day/24-hour retention
window (the emulator's life is short); ``startTime``/``endTime`` filter on market time.
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import Any

from adapters.sim.funding import FundingSchedule
from engine.events import CandleClosed

from . import params as P
from .candles import INTERVAL_MS, aggregate, interval_of
from .errors import param_error
from .instruments import all_rows, answer, row
from .records import ExecRecord, OrderRecord
from .state import MAX_PRICE_TICKS, EmulatorState
from .wire import exec_obj, kline_row, order_obj, position_obj


def server_time(now_ms: int) -> dict[str, Any]:
    """``/v5/market/time``."""
    return {"timeSecond": str(now_ms // 1000), "timeNano": str(now_ms * 1_000_000)}


def kline(st: EmulatorState, p: dict[str, Any]) -> dict[str, Any]:
    """``/v5/market/kline``: played bars, newest first, ``start``/``end``/``limit`` as Bybit.

    The file's own interval serves closed bars only. A multiple of it (e.g. "60" from a "5"
    file) is rolled up from the played bars, and its newest bar may still be open, as on Bybit.
    """
    category = P.text(p, "category", "linear") or "linear"
    if category != "linear":
        raise param_error(f"category only supports linear here, not {category!r}")
    symbol = P.require(p, "symbol")
    interval = P.require(p, "interval")
    if symbol != st.inst.symbol:
        raise param_error(f"symbol invalid: {symbol!r}")
    base_ms = st.candles[0].close_ms - st.candles[0].open_ms
    iv_ms = INTERVAL_MS.get(interval, 0)
    if iv_ms < base_ms or iv_ms % base_ms:
        own = interval_of(st.candles[0])
        raise param_error(f"interval {interval!r} not served: the emulator replays {own!r} bars")
    n = P.limit(p, 200, 1000)
    start = P.integer(p, "start", 0)
    end = P.integer(p, "end", 0)
    per = iv_ms // base_ms
    hi = st.cursor
    if end:
        group_end = end - end % iv_ms + iv_ms
        hi = bisect.bisect_left(st.candles, group_end, hi=hi, key=_open_ms)
    lo = max(0, hi - (n + 1) * per)
    if start:
        lo = max(lo, bisect.bisect_left(st.candles, start - start % iv_ms, hi=hi, key=_open_ms))
    bars = st.candles[lo:hi] if per == 1 else aggregate(st.candles[lo:hi], iv_ms)
    rows = [
        kline_row(st.inst, c)
        for c in reversed(bars)
        if (not end or c.open_ms <= end) and c.open_ms >= start
    ]
    return {"symbol": symbol, "category": "linear", "list": rows[:n]}


def funding_history(st: EmulatorState, p: dict[str, Any]) -> dict[str, Any]:
    """``/v5/market/funding/history``: the settlements the played market has passed, newest
    first, at most ``limit`` (1..200, default 200). As Bybit: ``endTime`` alone gives the
    ``limit`` settlements up to it, neither gives the latest, ``startTime`` alone is refused.
    Rates are the venue's (its funding series, else its constant rate)."""
    category = P.text(p, "category", "linear") or "linear"
    if category != "linear":
        raise param_error(f"category only supports linear here, not {category!r}")
    symbol = P.require(p, "symbol")
    if symbol != st.inst.symbol:
        raise param_error(f"symbol invalid: {symbol!r}")
    n = P.limit(p, 200, 200)
    start = P.integer(p, "startTime", 0)
    end = P.integer(p, "endTime", 0)
    if start and not end:
        raise param_error("startTime needs endTime")
    every = st.venue.funding_interval_ms
    rows: list[dict[str, str]] = []
    if every:
        hi = min(end, st.market_ms) if end else st.market_ms
        first = -(-st.candles[0].open_ms // every) * every
        schedule = FundingSchedule(st.sim)
        t = hi - hi % every
        while t >= max(first, start) and len(rows) < n:
            rate = f"{Decimal(schedule.rate_at(t)).scaleb(-8):f}"
            rows.append({"symbol": symbol, "fundingRate": rate, "fundingRateTimestamp": str(t)})
            t -= every
    return {"category": "linear", "list": rows}


def _open_ms(c: CandleClosed) -> int:
    return c.open_ms


def instruments_info(st: EmulatorState, p: dict[str, Any]) -> dict[str, Any]:
    """``/v5/market/instruments-info``: the traded instrument, then a catalog (``instruments``)."""
    funding_min = st.venue.funding_interval_ms // 60_000
    traded = row(st.inst.spec, 1, st.inst.ticks_to_price(MAX_PRICE_TICKS), funding_min, "Trading")
    return answer(all_rows(traded, funding_min), p)


def _match_order(st: EmulatorState, r: OrderRecord, p: dict[str, Any]) -> bool:
    symbol, settle, base = P.text(p, "symbol"), P.text(p, "settleCoin"), P.text(p, "baseCoin")
    spec = st.inst.spec
    if symbol and symbol != r.symbol:
        return False
    if settle and settle != spec.quote_coin:
        return False
    if base and base != spec.base_coin:
        return False
    flt = P.text(p, "orderFilter")
    if flt == "StopOrder" and not r.conditional:
        return False
    return not (flt == "Order" and r.conditional and r.status == "Untriggered")


def _newest_first(orders: list[OrderRecord]) -> list[OrderRecord]:
    return sorted(orders, key=lambda r: (r.created_ms, r.seq), reverse=True)


def _need_scope(p: dict[str, Any]) -> None:
    if not (P.text(p, "symbol") or P.text(p, "settleCoin") or P.text(p, "baseCoin")):
        raise param_error("one of symbol, baseCoin or settleCoin is required")


def open_orders(st: EmulatorState, p: dict[str, Any]) -> dict[str, Any]:
    """``/v5/order/realtime``: open orders; by orderId/orderLinkId also a recently closed one;
    ``openOnly=1``: the recent closed orders (at most 500)."""
    P.check_category(p)
    order_id, link = P.text(p, "orderId"), P.text(p, "orderLinkId")
    if order_id:
        found = [r for r in st.orders.values() if r.order_id == order_id]
    elif link:
        found = [r for r in st.orders.values() if r.link_id == link]
    else:
        _need_scope(p)
        closed_only = P.text(p, "openOnly", "0") == "1"
        found = [
            r
            for r in st.orders.values()
            if (not r.is_open if closed_only else r.is_open) and _match_order(st, r, p)
        ]
        if closed_only:
            found = _newest_first(found)[:500]
    return _order_page(st, _newest_first(found), p)


def order_history(st: EmulatorState, p: dict[str, Any]) -> dict[str, Any]:
    """``/v5/order/history``: closed orders (Filled, Cancelled, Rejected, Deactivated)."""
    P.check_category(p)
    order_id, link = P.text(p, "orderId"), P.text(p, "orderLinkId")
    status = P.text(p, "orderStatus")
    start, end = P.integer(p, "startTime", 0), P.integer(p, "endTime", 0)
    found = []
    for r in st.orders.values():
        if r.is_open or not _match_order(st, r, p):
            continue
        if (order_id and r.order_id != order_id) or (link and r.link_id != link):
            continue
        if status and r.status != status:
            continue
        if (start and r.created_ms < start) or (end and r.created_ms > end):
            continue
        found.append(r)
    return _order_page(st, _newest_first(found), p)


def _order_page(st: EmulatorState, rows: list[OrderRecord], p: dict[str, Any]) -> dict[str, Any]:
    chunk, nxt = P.page(rows, P.cursor_offset(p), P.limit(p, 20, 50))
    return {
        "list": [order_obj(st.inst, r) for r in chunk],
        "nextPageCursor": nxt,
        "category": "linear",
    }


def executions(st: EmulatorState, p: dict[str, Any]) -> dict[str, Any]:
    """``/v5/execution/list``: newest first by execTime (ties by seq), cursor-paginated."""
    P.check_category(p)
    symbol = P.text(p, "symbol")
    order_id, link = P.text(p, "orderId"), P.text(p, "orderLinkId")
    exec_type = P.text(p, "execType")
    start, end = P.integer(p, "startTime", 0), P.integer(p, "endTime", 0)

    def keep(e: ExecRecord) -> bool:
        return not (
            (symbol and e.symbol != symbol)
            or (order_id and e.order_id != order_id)
            or (link and e.link_id != link)
            or (exec_type and e.exec_type != exec_type)
            or (start and e.exec_ms < start)
            or (end and e.exec_ms > end)
        )

    rows = sorted(
        (e for e in st.executions if keep(e)), key=lambda e: (e.exec_ms, e.seq), reverse=True
    )
    chunk, nxt = P.page(rows, P.cursor_offset(p), P.limit(p, 50, 100))
    return {
        "nextPageCursor": nxt,
        "category": "linear",
        "list": [exec_obj(st.inst, e) for e in chunk],
    }


def positions(st: EmulatorState, p: dict[str, Any]) -> dict[str, Any]:
    """``/v5/position/list``: with ``symbol`` the row even when flat; with only ``settleCoin``
    only a non-empty position."""
    P.check_category(p)
    symbol, settle = P.text(p, "symbol"), P.text(p, "settleCoin")
    if not (symbol or settle):
        raise param_error("symbol or settleCoin is required")
    view = st.position_view()
    rows = []
    if symbol:
        if symbol == st.inst.symbol:
            rows.append(position_obj(st.inst, view))
    elif settle == st.inst.spec.quote_coin and view.qty != 0:
        rows.append(position_obj(st.inst, view))
    return {"list": rows, "nextPageCursor": "", "category": "linear"}


def wallet_balance(st: EmulatorState, p: dict[str, Any]) -> dict[str, Any]:
    """``/v5/account/wallet-balance`` (accountType UNIFIED)."""
    account = P.text(p, "accountType")
    if account != "UNIFIED":
        raise param_error(f"accountType only supports UNIFIED, not {account!r}")
    acct = st.wallet()
    coins = [c for c in P.text(p, "coin").split(",") if c]
    if coins:
        acct["coin"] = [c for c in acct["coin"] if c["coin"] in coins]
    return {"list": [acct]}
