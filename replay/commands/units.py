"""Events in human units for ``replay inspect``: prices in the quote coin, sizes in the base.

The log keeps fixed-point integers (price in ticks, quantity in lots, money in 1e-8
quote units); a person reads decimals. Only an event's own integer fields are
converted, by name, to exact decimal strings; nested values (an Intent's own
fields) and floats are left as they are. ``--raw`` skips this.
"""

from __future__ import annotations

from typing import Any, Final

from engine.instrument import Instrument, money_to_str

PRICE_FIELDS: Final = frozenset(
    {"open", "high", "low", "close", "price", "trigger_price", "take_profit", "stop_loss",
     "mark_price", "liq_price"}
)  # fmt: skip
QTY_FIELDS: Final = frozenset({"qty", "volume", "venue_qty", "local_qty", "filled"})
MONEY_FIELDS: Final = frozenset(
    {"fee", "fees", "amount", "turnover", "wallet", "available", "entry_value",
     "venue_entry_value", "local_entry_value", "initial_balance", "filled_value"}
)  # fmt: skip


def humanize(row: dict[str, Any], instrument: Instrument) -> dict[str, Any]:
    """A copy of ``row`` with tick, lot and money integers as decimal strings."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if not isinstance(value, int) or isinstance(value, bool):
            out[key] = value
        elif key in PRICE_FIELDS:
            out[key] = instrument.ticks_to_price(value) if value else "0"
        elif key in QTY_FIELDS:
            out[key] = instrument.lots_to_qty(value)
        elif key in MONEY_FIELDS:
            out[key] = money_to_str(value)
        else:
            out[key] = value
    return out
