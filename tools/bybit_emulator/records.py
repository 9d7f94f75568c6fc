"""The emulator's own account records: orders and executions as Bybit reports them.

They are folded from the matching engine's events (see ``state.py``) so that REST queries and
private WS pushes describe exactly what the venue did, including closed orders the venue has
forgotten. Units are the engine's: ticks, lots, money (1e-8 USDT), ms.
"""

from __future__ import annotations

import msgspec

OPEN = ("New", "PartiallyFilled", "Untriggered", "Triggered")


class OrderRecord(msgspec.Struct, gc=False):
    """One order's Bybit-visible state (mutable; owned by ``EmulatorState``)."""

    order_id: str
    link_id: str  # the client's orderLinkId, "" when it sent none
    client_id: str  # the id the matching engine knows the order by
    symbol: str
    side: str
    order_type: str
    qty: int
    price: int
    trigger_price: int
    trigger_direction: int
    tif: str
    reduce_only: bool
    created_ms: int
    seq: int  # creation order, for stable newest-first sorting
    status: str = "New"
    cum_qty: int = 0
    cum_value: int = 0
    cum_fee: int = 0
    updated_ms: int = 0
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    last_price_on_created: int = 0
    conditional: bool = False
    # Attached TP/SL (ticks, 0 = none; tpslMode Full, LastPrice) the order carries; for an
    # order the venue armed from them: the parent's orderLinkId and StopLoss / TakeProfit.
    take_profit: int = 0
    stop_loss: int = 0
    parent_link: str = ""
    stop_type: str = ""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def leaves_qty(self) -> int:
        return self.qty - self.cum_qty if self.is_open else 0


class ExecRecord(msgspec.Struct, frozen=True, gc=False):
    """One execution (trade, funding, or liquidation), as ``/v5/execution/list`` shows it."""

    exec_id: str
    order_id: str
    link_id: str
    symbol: str
    side: str
    price: int
    qty: int
    value: int  # money
    fee: int  # money, > 0 paid
    fee_rate_e8: int
    is_maker: bool
    exec_type: str
    exec_ms: int
    order_type: str
    order_price: int
    order_qty: int
    leaves_qty: int
    stop_order_type: str
    closed_qty: int
    exec_pnl: int  # money
    mark_price: int
    seq: int
