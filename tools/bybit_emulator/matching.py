"""The one seam between the emulator and its matching engine.

The emulator does not match orders itself: it drives ``adapters.sim.venue.SimVenue`` (the
backtest's simulated venue) so that an emulated session and a backtest of the same candles
fill identically. ``Venue`` lists exactly what the emulator uses of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from adapters.sim.config import SimConfig
from engine.events import AmendOrder, CancelOrder, CandleClosed, EventBase, SubmitOrder
from engine.instrument import Instrument
from engine.positions import Position


class Venue(Protocol):
    """What the emulator needs from a matching engine (SimVenue satisfies it)."""

    position: Position

    def on_command(self, cmd: SubmitOrder | AmendOrder | CancelOrder) -> Sequence[EventBase]: ...

    def on_candle(self, candle: CandleClosed) -> Sequence[EventBase]: ...

    def available(self) -> int: ...

    def liq_price(self) -> int: ...


def wallet_of(venue: Any) -> int:
    """The venue's wallet balance in money units (an int, or an object with ``balance``)."""
    w = venue.wallet
    if isinstance(w, int):
        return w
    for name in ("balance", "wallet", "cash"):
        if hasattr(w, name):
            return int(getattr(w, name))
    raise TypeError(f"cannot read a balance from venue.wallet of type {type(w).__name__}")


def make_venue(instrument: Instrument, config: SimConfig, balance: int) -> Venue:
    """A fresh simulated venue holding ``balance`` money units."""
    from adapters.sim.venue import SimVenue

    venue: Venue = SimVenue(instrument, config, balance, id_prefix="emu")
    return venue
