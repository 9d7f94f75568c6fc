"""Instrument specs the app knows without asking a venue (backtests run offline).

Values are Bybit's linear instruments-info filters. Live and demo sessions fetch
the spec from the venue instead; a backtest of another symbol needs an entry here.
"""

from __future__ import annotations

import difflib

from engine.events import InstrumentSpec
from engine.instrument import BTCUSDT, Instrument
from replay.errors import InputError

KNOWN: dict[str, InstrumentSpec] = {
    "BTCUSDT": BTCUSDT,
    "ETHUSDT": InstrumentSpec(
        symbol="ETHUSDT",
        tick_size="0.01",
        qty_step="0.01",
        min_qty="0.01",
        min_notional="5",
        max_qty="7240",
        base_coin="ETH",
    ),
    "SOLUSDT": InstrumentSpec(
        symbol="SOLUSDT",
        tick_size="0.01",
        qty_step="0.1",
        min_qty="0.1",
        min_notional="5",
        max_qty="79770",
        base_coin="SOL",
    ),
}


def instrument_for(symbol: str) -> Instrument:
    """The instrument for ``symbol``, or an InputError suggesting a known one."""
    spec = KNOWN.get(symbol.upper())
    if spec is None:
        close = difflib.get_close_matches(symbol.upper(), list(KNOWN), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise InputError(
            f"symbol {symbol!r} has no built-in instrument spec (known: {', '.join(KNOWN)}){hint}"
        )
    return Instrument(spec)
