"""The simulated venue's order record and the venue's error codes (Bybit retCodes)."""

from __future__ import annotations

from operator import truediv  # int / int rounded once, as Python does, also under mypyc
from typing import Final

import msgspec

from engine.events import BUY, CANCELLED, DEACTIVATED, PARTIALLY_FILLED_CANCELED

# Bybit v5 retCodes the venue answers with (OrderRejected.code / CommandRejected.code).
PARAMS_ERROR: Final = 10001
ORDER_NOT_FOUND: Final = 110001  # "order not exists or too late to cancel/amend"
INSUFFICIENT_BALANCE: Final = 110007
REDUCE_ONLY_RULE: Final = 110017
DUPLICATE_CLIENT_ID: Final = 110072
TRIGGER_EXPECT_RISING: Final = 110092  # trigger_direction 1 but trigger <= current price
TRIGGER_EXPECT_FALLING: Final = 110093  # trigger_direction 2 but trigger >= current price
MIN_NOTIONAL: Final = 110094

# Bybit reject/cancel reasons the venue reports as text.
POST_ONLY_WOULD_TAKE: Final = "EC_PostOnlyWillTakeLiquidity"
CANCEL_BY_USER: Final = "CancelByUser"
CANCEL_BY_REDUCE_ONLY: Final = "CancelByReduceOnly"
CANCEL_BEFORE_LIQ: Final = "CancelAllBeforeLiq"
CANCEL_BY_TPSL_CLEAR: Final = "CancelByTpSlTsClear"  # a position TP/SL replaced by a newer one

MARKET: Final = "Market"
LIMIT: Final = "Limit"
GTC: Final = "GTC"
IOC: Final = "IOC"
FOK: Final = "FOK"
POST_ONLY: Final = "PostOnly"
TIME_IN_FORCE: Final = (GTC, IOC, FOK, POST_ONLY)


class SimOrder(msgspec.Struct, gc=False):
    """One order as the venue holds it (mutable; owned by ``SimVenue``).

    ``qty``/``price``/``trigger_price`` are the current (possibly amended) values in
    lots/ticks; ``price`` is 0 for market orders, ``trigger_price`` 0 for plain ones.
    ``status`` is a Bybit orderStatus: New, PartiallyFilled, Untriggered (a conditional
    order waiting for its trigger), Filled, Cancelled, PartiallyFilledCanceled,
    Deactivated (a conditional order cancelled before it triggered). ``cum_value`` is
    the filled notional (money), ``cum_fee`` the fees paid on it. ``active_from`` is
    the time (ms) from which the order may fill: an order (or an amend) stamped at a
    candle's close only takes part in candles that open at or after that time.
    ``close_reason`` is the cancel/expiry reason once closed. ``taker`` marks a limit
    that crossed the last price when placed (it fills as a taker at the next open if
    still marketable there). ``live``, ``in_candle`` and ``candle_filled`` are the
    venue's per-candle scratch space; ignore them.
    """

    client_id: str
    venue_id: str
    symbol: str
    side: str
    order_type: str
    qty: int
    price: int
    trigger_price: int
    trigger_direction: int
    tif: str
    reduce_only: bool
    status: str
    created_ts: int
    updated_ts: int
    purpose: str = ""
    cum_qty: int = 0
    cum_value: int = 0
    cum_fee: int = 0
    triggered: bool = False
    active_from: int = 0
    close_reason: str = ""
    seq: int = 0
    taker: bool = False  # a limit that crossed the last price when placed: fills as taker
    live: bool = False  # may still act during the candle being processed
    in_candle: bool = False  # took part in the candle being processed
    candle_filled: int = 0  # lots filled during the candle being processed
    # Attached take-profit / stop-loss (ticks, 0 = none; Bybit tpslMode Full, LastPrice):
    # armed as reduce-only conditional market orders when this order fills.
    take_profit: int = 0
    stop_loss: int = 0
    parent: str = ""  # an armed TP/SL: the client id of the order that carried it

    @property
    def remaining(self) -> int:
        """Lots still to fill."""
        return self.qty - self.cum_qty

    @property
    def is_buy(self) -> bool:
        return self.side == BUY

    @property
    def waiting_trigger(self) -> bool:
        """A conditional order that has not triggered yet (status Untriggered)."""
        return self.trigger_price > 0 and not self.triggered

    @property
    def is_market(self) -> bool:
        return self.order_type == MARKET

    def avg_price_ticks(self, notional_unit: int) -> float:
        """Average fill price in (fractional) ticks, 0.0 before any fill (for reports)."""
        if self.cum_qty == 0:
            return 0.0
        return truediv(self.cum_value, self.cum_qty * notional_unit)

    def closed_status(self) -> str:
        """The status a cancel/expiry gives this order now."""
        if self.waiting_trigger:
            return DEACTIVATED
        return PARTIALLY_FILLED_CANCELED if self.cum_qty else CANCELLED
