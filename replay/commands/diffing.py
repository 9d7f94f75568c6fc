"""``replay diff`` inputs: each session's decision records and headline metrics, one read.

``--from TIME`` keeps the records at or after that market time. ``--after-warmup``
starts both at the later of the two sessions' first execution candle, so a demo
session (whose log starts with its back-filled warm-up candles) and a backtest over
a longer span are compared over the candles both saw. Metrics are each session's
whole-log summary, side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from engine.events import CandleClosed, EventBase, SessionStarted
from eventstore import EventStore
from projections.account import AccountView
from projections.metrics import summarize
from replay.compare import Record, records
from replay.report import summary_dict
from replay.verify import read_session

METRICS = (
    "trades",
    "total_return",
    "max_drawdown",
    "sharpe",
    "win_rate",
    "profit_factor",
    "fees_paid",
    "final_equity",
)


class SideOfDiff(msgspec.Struct):
    records: list[Record]
    metrics: dict[str, Any]
    first_candle_ms: int


def load(store: EventStore, session_id: str) -> SideOfDiff:
    view = AccountView()
    first: list[int] = []
    timeframe = [""]

    def events() -> Iterator[EventBase]:
        for _, event in read_session(store, session_id):
            view.apply(event)
            if isinstance(event, SessionStarted):
                timeframe[0] = event.timeframe
            elif not first and isinstance(event, CandleClosed) and event.timeframe == timeframe[0]:
                first.append(event.close_ms)
            yield event

    recs = records(events())
    full = summary_dict(summarize(view), {})
    return SideOfDiff(recs, {k: full.get(k) for k in METRICS}, first[0] if first else 0)


def since(recs: list[Record], market_ms: int | None) -> list[Record]:
    """The records at or after ``market_ms`` (all of them when None)."""
    return recs if market_ms is None else [r for r in recs if r.market_ms >= market_ms]


def fmt_metric(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in ("total_return", "max_drawdown", "win_rate"):
        return f"{value:+.2%}" if name == "total_return" else f"{value:.2%}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"
