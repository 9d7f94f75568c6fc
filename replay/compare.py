"""``replay diff``: where two sessions first part ways, and how much they differ.

Sessions are compared by what a trader would call the same decisions, aligned by
market time: each intent, order command and fill is stamped with the close time of
the last execution candle seen before it, and stripped of what legitimately differs
between runs and venues (client and venue order ids, execution ids, wall-clock
timestamps). A live session and a backtest of the same candles should then agree
record for record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import msgspec

from engine.events import (
    AmendOrder,
    CancelOrder,
    CandleClosed,
    EventBase,
    Fill,
    IntentEmitted,
    RiskRejected,
    SessionStarted,
    SubmitOrder,
    to_dict,
)

# Fields that name things rather than decide them.
_IGNORED = frozenset({"ts", "client_id", "venue_id", "exec_id", "type"})
KINDS = ("intent", "order", "amend", "cancel", "risk", "fill")


class Record(msgspec.Struct, frozen=True):
    market_ms: int
    kind: str
    fields: tuple[tuple[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"market_ms": self.market_ms, "kind": self.kind, **dict(self.fields)}


class Difference(msgspec.Struct):
    index: int
    a: dict[str, Any] | None
    b: dict[str, Any] | None


class DiffResult(msgspec.Struct):
    same: bool
    counts_a: dict[str, int]
    counts_b: dict[str, int]
    first: Difference | None = None
    differing: int = 0  # records present in one session and not in the other (multiset)


def _fields(event: EventBase) -> tuple[tuple[str, Any], ...]:
    data = to_dict(event)
    return tuple((k, _freeze(v)) for k, v in data.items() if k not in _IGNORED)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def records(events: Iterable[EventBase]) -> list[Record]:
    """The decision records of a session, in log order."""
    out: list[Record] = []
    timeframe = ""
    market = 0
    for event in events:
        kind = type(event)
        if kind is SessionStarted:
            assert isinstance(event, SessionStarted)
            timeframe = event.timeframe
        elif kind is CandleClosed:
            assert isinstance(event, CandleClosed)
            if event.timeframe == timeframe:
                market = event.close_ms
        elif kind is IntentEmitted:
            out.append(Record(market, "intent", _fields(event)))
        elif kind is SubmitOrder:
            out.append(Record(market, "order", _fields(event)))
        elif kind is AmendOrder:
            out.append(Record(market, "amend", _fields(event)))
        elif kind is CancelOrder:
            out.append(Record(market, "cancel", _fields(event)))
        elif kind is RiskRejected:
            out.append(Record(market, "risk", _fields(event)))
        elif kind is Fill:
            out.append(Record(market, "fill", _fields(event)))
    return out


def diff(a: list[Record], b: list[Record]) -> DiffResult:
    counts_a = Counter(r.kind for r in a)
    counts_b = Counter(r.kind for r in b)
    first: Difference | None = None
    for i in range(max(len(a), len(b))):
        ra = a[i] if i < len(a) else None
        rb = b[i] if i < len(b) else None
        if ra != rb:
            first = Difference(
                index=i,
                a=ra.as_dict() if ra else None,
                b=rb.as_dict() if rb else None,
            )
            break
    ca, cb = Counter(a), Counter(b)
    differing = sum(((ca - cb) + (cb - ca)).values())
    return DiffResult(
        same=first is None,
        counts_a={k: counts_a.get(k, 0) for k in KINDS},
        counts_b={k: counts_b.get(k, 0) for k in KINDS},
        first=first,
        differing=differing,
    )
