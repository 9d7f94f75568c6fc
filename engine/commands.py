"""Order commands as the engine emits them: client ids, price rounding, submit and cancel.

Every command goes through here so that each ``SubmitOrder`` registers its order as
``Requested`` in the book, and a cancel is never sent twice for one order.

Rounding (documented in engine/README.md): prices round to the tick on the side that
is never worse for us -- buys down, sells up. That rule covers limits (never pay more /
receive less than asked), stops (a buy stop covering a short rounds down: it triggers
no later than asked) and take-profits alike. Distances round up.
"""

from __future__ import annotations

import hashlib
import math
import re
from functools import lru_cache
from typing import Final

from engine.events import BUY, CancelOrder, Event, SubmitOrder
from engine.orders import Order
from engine.state import EngineState, Protection

#: Timer keys of iceberg/TWAP plans start with this.
SLICE_PREFIX: Final = "slice:"


@lru_cache(maxsize=64)
def client_prefix(session_id: str) -> str:
    """The client-order-id prefix of a session: readable, unique and venue-legal.

    Bybit's orderLinkId takes at most 36 of [A-Za-z0-9_-] and must never repeat on an
    account, so the prefix is up to 10 sanitised characters of the session name plus 8
    hex digits of its hash (two sessions never share one); "-<n>" is appended per order.
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", session_id)[:10]
    digest = hashlib.blake2b(session_id.encode(), digest_size=4).hexdigest()
    return f"{name}-{digest}"


def round_price(ticks: int | float, side: str) -> int:
    """A float price in ticks onto the grid: buys round down, sells round up."""
    return math.floor(ticks) if side == BUY else math.ceil(ticks)


def ticks_up(distance: int | float) -> int:
    """A distance in ticks, rounded up (a stop further away never sizes a larger trade)."""
    return math.ceil(abs(distance))


def submit(
    s: EngineState,
    ts: int,
    out: list[Event],
    side: str,
    lots: int,
    purpose: str,
    *,
    price: int = 0,
    trigger: int = 0,
    direction: int = 0,
    reduce_only: bool = False,
    protect: Protection | None = None,
) -> SubmitOrder:
    """Emit a ``SubmitOrder`` with the next client id and register it as Requested.

    ``protect``: the stop-loss / take-profit the order's fill must bring; attached levels
    travel on the order (``SubmitOrder.stop_loss`` / ``take_profit``)."""
    s.order_seq += 1
    attach = protect is not None and protect.attached
    cmd = SubmitOrder(
        ts=ts,
        client_id=f"{client_prefix(s.session_id)}-{s.order_seq}",
        symbol=s.symbol,
        side=side,
        order_type="Limit" if price else "Market",
        qty=lots,
        price=price,
        trigger_price=trigger,
        trigger_direction=direction,
        reduce_only=reduce_only,
        take_profit=protect.take_profit if attach else 0,  # type: ignore[union-attr]
        stop_loss=protect.stop_loss if attach else 0,  # type: ignore[union-attr]
        purpose=purpose,
    )
    if protect is not None and (protect.stop_loss or protect.take_profit):
        s.protect[cmd.client_id] = protect
    s.book.submit(cmd)
    s.ctx_dirty = True
    out.append(cmd)
    return cmd


def cancel(ts: int, out: list[Event], order: Order, reason: str) -> None:
    """Ask the venue to cancel ``order`` (once: a pending cancel is not repeated)."""
    if not order.cancel_pending:
        order.cancel_pending = True
        out.append(CancelOrder(ts, order.client_id, reason))


def cancel_all(s: EngineState, ts: int, out: list[Event], reason: str, keep: str = "") -> None:
    """Cancel every open order (except those whose purpose is ``keep``), drop every plan,
    time-out and pending protection, and forget the stop / take-profit levels."""
    for order in list(s.book.open.values()):
        if not keep or order.purpose != keep:
            cancel(ts, out, order, reason)
    s.plans.clear()
    s.timeouts.clear()
    s.protect.clear()
    if s.timers:
        s.timers = [t for t in s.timers if not t.key.startswith(SLICE_PREFIX)]
    s.stop_price = s.tp_price = s.trail = 0
