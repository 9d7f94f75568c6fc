"""The async protocol every live-ish venue speaks (Bybit demo/live, the emulator).

A venue takes the engine's order commands, answers them *only* through ``events()``
(``OrderAccepted`` / ``OrderRejected`` / ``CommandRejected`` ...), streams its own
events (fills, cancels, closed candles) in arrival order, and can be asked for a
``VenueSnapshot`` for reconciliation. Everything is in the engine's fixed-point units
(ticks, lots, 1e-8 money); the venue converts at its edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec

from engine.events import (
    AmendOrder,
    BalanceSnapshot,
    CancelOrder,
    Event,
    Fill,
    FundingPaid,
    Liquidated,
    PositionSnapshot,
    SubmitOrder,
)


class OpenOrder(msgspec.Struct, frozen=True, gc=False):
    """One order the venue reports as open (New, PartiallyFilled or Untriggered)."""

    client_id: str  # orderLinkId; "" for an order placed outside this system
    venue_id: str
    symbol: str
    side: str
    order_type: str
    qty: int  # lots, the order's current total quantity
    filled_qty: int  # lots executed so far
    price: int = 0  # ticks; 0 for market
    trigger_price: int = 0
    trigger_direction: int = 0
    status: str = "New"
    time_in_force: str = "GTC"
    reduce_only: bool = False
    created_ms: int = 0
    updated_ms: int = 0


class VenueSnapshot(msgspec.Struct, frozen=True, gc=False):
    """What the venue says is true at ``ts`` (ms, venue clock), for reconciliation.

    ``fills`` / ``funding`` / ``liquidations`` hold executions at or after the
    ``since_ms`` that was asked for (all the venue keeps if it was None), oldest first.
    """

    ts: int
    open_orders: list[OpenOrder] = []
    positions: list[PositionSnapshot] = []
    balances: list[BalanceSnapshot] = []
    fills: list[Fill] = []
    funding: list[FundingPaid] = []
    liquidations: list[Liquidated] = []
    since_ms: int | None = None


@runtime_checkable
class Venue(Protocol):
    """An exchange as the live daemon sees it. Answers come through ``events()``."""

    async def submit(self, cmd: SubmitOrder) -> None:
        """Place an order; idempotent per ``cmd.client_id`` (never placed twice)."""
        ...

    async def amend(self, cmd: AmendOrder) -> None:
        """Change qty/price/trigger of an open order (0 = unchanged)."""
        ...

    async def cancel(self, cmd: CancelOrder) -> None:
        """Ask the venue to cancel an open order."""
        ...

    def events(self) -> AsyncIterator[Event]:
        """Venue events and closed candles, in arrival order, until ``close()``."""
        ...

    async def snapshot(self, since_ms: int | None = None) -> VenueSnapshot:
        """Open orders, positions, balances and executions since ``since_ms``."""
        ...

    async def close(self) -> None:
        """Stop streams and release connections; ``events()`` then ends."""
        ...
