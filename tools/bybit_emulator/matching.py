"""The one seam between the emulator and its matching engine.

The emulator does not match orders itself: it drives ``adapters.sim.venue.SimVenue`` (the
backtest's simulated venue) so that an emulated session and a backtest of the same candles
fill identically. ``Venue`` lists exactly what the emulator uses of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from adapters.sim.config import SimConfig
from adapters.sim.orders import SimOrder
from adapters.sim.venue import SimVenue
from engine.events import AmendOrder, CancelOrder, CandleClosed, EventBase, SubmitOrder
from engine.instrument import Instrument
from engine.positions import Position


class Venue(Protocol):
    """What the emulator needs from a matching engine (SimVenue satisfies it)."""

    position: Position
    funding_interval_ms: int
    leverage: int
    margin_mode: str

    @property
    def wallet(self) -> int:
        """Wallet balance in money units (initial + realized - fees - funding)."""
        ...

    def on_command(self, cmd: SubmitOrder | AmendOrder | CancelOrder) -> Sequence[EventBase]: ...

    def on_candle(self, candle: CandleClosed) -> Sequence[EventBase]: ...

    def available(self) -> int: ...

    def liq_price(self) -> int: ...

    def find_order(self, order_id: str) -> SimOrder | None: ...

    def trading_stop(self, ts: int, purpose: str, level: int) -> Sequence[EventBase]: ...

    def set_leverage(self, leverage: int) -> None: ...

    def set_margin_mode(self, mode: str) -> None: ...


def make_venue(instrument: Instrument, config: SimConfig, balance: int) -> Venue:
    """A fresh simulated venue holding ``balance`` money units."""
    return SimVenue(instrument, config, balance, id_prefix="emu")
