"""Builders shared by the simulated-venue tests (this module holds no tests).

The test instrument has a 1 USDT tick and a 1-unit lot, so one tick times one lot is
exactly 1 USDT (``USDT`` money units) and the stories read in plain numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from adapters.sim import SimConfig, SimOrder, SimVenue
from engine.events import CandleClosed, Event, InstrumentSpec, SubmitOrder
from engine.instrument import MONEY_SCALE, Instrument

SYMBOL = "TESTUSDT"
USDT = MONEY_SCALE  # one tick * one lot of the test instrument, in money
MINUTE = 60_000
INSTRUMENT = Instrument(InstrumentSpec(SYMBOL, "1", "1", "1", min_notional="5"))


def bar(
    i: int, o: int, h: int, low: int, c: int, volume: int = 1_000, *, minutes: int = 1
) -> CandleClosed:
    """The ``i``-th bar (0-based) of a series starting at the epoch."""
    span = minutes * MINUTE
    return CandleClosed(
        (i + 1) * span, SYMBOL, f"{minutes}m", i * span, (i + 1) * span, o, h, low, c, volume
    )


def submit(ts: int, client_id: str, side: str, qty: int, **kw: Any) -> SubmitOrder:
    """A SubmitOrder; ``price`` makes it a limit unless ``order_type`` says otherwise."""
    order_type = kw.pop("order_type", "Limit" if kw.get("price") else "Market")
    return SubmitOrder(ts, client_id, SYMBOL, side, order_type, qty, **kw)


def venue(balance_usdt: int = 10_000, **config: Any) -> SimVenue:
    return SimVenue(INSTRUMENT, SimConfig(**config), balance_usdt * USDT)


def fee(notional_usdt: int, rate_e8: int) -> int:
    """A paid fee in money, rounded up, computed independently of engine.instrument."""
    num = notional_usdt * USDT * rate_e8
    return -(-num // 10**8)


T = TypeVar("T")


def of(events: Sequence[Event], kind: type[T]) -> list[T]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def only(events: Sequence[Event], kind: type[T]) -> T:
    """The single event of a one-event answer, checked to be of ``kind``."""
    assert len(events) == 1, events
    (event,) = events
    assert isinstance(event, kind), event
    return event


def order(v: SimVenue, client_id: str) -> SimOrder:
    """An order the venue accepted (open or closed)."""
    found = v.find_order(client_id)
    assert found is not None, client_id
    return found
