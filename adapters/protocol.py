"""The async protocol every live-ish venue speaks (Bybit demo/live, the emulator).

A venue takes the engine's order commands, answers them *only* through ``events()``
(``OrderAccepted`` / ``OrderRejected`` / ``CommandRejected`` ...), streams its own
events (fills, cancels, closed candles) in arrival order, and can be asked for a
``VenueSnapshot`` for reconciliation. Everything is in the engine's fixed-point units
(ticks, lots, 1e-8 money); the venue converts at its edge.

The protocol is exactly what the live daemon (``replay.daemon``) uses of a venue:
commands, events, snapshots, the final status of an order that is no longer open,
closed candles (the newest ``n``, or since a time), the private-stream barrier, the
venue's clock and its rate-limit waits. No venue-specific object crosses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from engine.events import (
    AmendOrder,
    BalanceSnapshot,
    CancelOrder,
    CandleClosed,
    Event,
    Fill,
    FundingPaid,
    InstrumentSpec,
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


class FinalOrder(msgspec.Struct, frozen=True, gc=False):
    """The venue's last word on an order no longer open (reconciliation asks for it)."""

    status: str  # Filled | Cancelled | Rejected | Deactivated | "" (unknown to the venue)
    venue_id: str = ""
    reason: str = ""


@runtime_checkable
class Venue(Protocol):
    """An exchange as the live daemon sees it. Answers come through ``events()``."""

    async def submit(self, cmd: SubmitOrder, *, maybe_sent: bool = False) -> None:
        """Place an order; idempotent per ``cmd.client_id`` (never placed twice).
        ``maybe_sent``: it may have reached the venue before a crash: look it up first."""
        ...

    @property
    def pipelined(self) -> bool:
        """True when independent orders of one candle may go out without waiting for each
        other's replies (the Trade API socket is up)."""
        ...

    async def amend(self, cmd: AmendOrder) -> None:
        """Change qty/price/trigger of an open order (0 = unchanged)."""
        ...

    async def cancel(self, cmd: CancelOrder) -> None:
        """Ask the venue to cancel an open order."""
        ...

    async def submit_batch(self, cmds: Sequence[SubmitOrder]) -> None:
        """Place independent orders at once (batch requests where the venue has them),
        each answered as ``submit`` answers it."""
        ...

    async def amend_batch(self, cmds: Sequence[AmendOrder]) -> None:
        """Independent amends at once, each answered as ``amend`` answers it."""
        ...

    async def cancel_batch(self, cmds: Sequence[CancelOrder]) -> None:
        """Independent cancels at once, each answered as ``cancel`` answers it."""
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

    # -- what the daemon needs besides commands, events and snapshots --------

    spec: InstrumentSpec | None  # the traded instrument, known once started

    @property
    def name(self) -> str:
        """``SessionStarted.venue``: "bybit-demo", "bybit-live", "emulator", ..."""
        ...

    async def start(self) -> None:
        """Connect: instrument, clock, streams subscribed."""
        ...

    def now_ms(self) -> int:
        """The venue's clock, ms."""
        ...

    async def final_status(self, client_id: str) -> FinalOrder:
        """What became of an order that is no longer open ("" if the venue never had it)."""
        ...

    async def recent_candles(self, n: int) -> list[CandleClosed]:
        """The ``n`` newest closed candles, oldest first, flagged ``backfill``."""
        ...

    async def candles_since(self, open_ms: int) -> list[CandleClosed]:
        """Closed candles opened at or after ``open_ms``, oldest first, flagged ``backfill``."""
        ...

    def candles_logged_up_to(self, open_ms: int) -> None:
        """The log holds candles up to ``open_ms``: later back-fills start after it."""
        ...

    async def backfill_candles(self) -> None:
        """Put the closed candles the log lacks into ``events()`` (``backfill=True``)."""
        ...

    async def private_barrier(self, timeout_s: float = 1.0) -> bool:
        """Wait until what the private stream sent before now is queued in ``events()``."""
        ...

    async def catch_up(self) -> None:
        """Put the executions and order transitions the private stream may not have
        delivered yet into ``events()`` (looked up; each still comes out once)."""
        ...

    def drain_ready(self) -> list[Event]:
        """The events already queued, without waiting."""
        ...

    def release_held(self) -> None:
        """Emit terminal order events that waited for fills (after a reconciliation)."""
        ...

    def rate_limit_waits(self) -> int:
        """Requests that waited for the rate limiter so far."""
        ...
