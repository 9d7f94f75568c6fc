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

from engine.events import CandleClosed, EventBase, InstrumentSpec, SessionStarted
from engine.instrument import Instrument
from eventstore import EventStore
from projections.account import AccountView
from projections.metrics import summarize
from replay.commands.units import humanize
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
    instrument: InstrumentSpec | None = None


def load(store: EventStore, session_id: str) -> SideOfDiff:
    view = AccountView()
    first: list[int] = []
    timeframe = [""]
    spec: list[InstrumentSpec] = []

    def events() -> Iterator[EventBase]:
        for _, event in read_session(store, session_id):
            view.apply(event)
            if isinstance(event, SessionStarted):
                timeframe[0] = event.timeframe
                spec.append(event.instrument)
            elif not first and isinstance(event, CandleClosed) and event.timeframe == timeframe[0]:
                first.append(event.close_ms)
            yield event

    recs = records(events())
    full = summary_dict(summarize(view), {})
    return SideOfDiff(
        recs,
        {k: full.get(k) for k in METRICS},
        first[0] if first else 0,
        spec[0] if spec else None,
    )


def _unfreeze(value: Any) -> Any:
    """Back from ``compare``'s hashable tuples: a tuple of (str, value) pairs is a dict."""
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)
                         for v in value):  # fmt: skip
            return {k: _unfreeze(v) for k, v in value}
        return [_unfreeze(v) for v in value]
    return value


def readable(record: dict[str, Any] | None, spec: InstrumentSpec | None) -> str:
    """One line a person reads: kind, then the fields that are set, in USDT and BTC."""
    if record is None:
        return "(nothing)"
    fields = {k: _unfreeze(v) for k, v in record.items() if k not in ("market_ms", "kind")}
    for nested in [k for k, v in fields.items() if isinstance(v, dict)]:
        fields.update(fields.pop(nested))  # an Intent's own fields, as they are
    fields = {k: v for k, v in fields.items() if v not in (0, 0.0, "", None)}  # unset
    if spec is not None:
        fields = humanize(fields, Instrument(spec))
    shown = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{record.get('kind', '?')}: {shown}"


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
