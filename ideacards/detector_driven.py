"""An example Python strategy for ``strategy: {class: ...}`` (see detector_driven.yaml).

It implements ``engine.plan.PythonStrategy``: ``on_bar(bar, ctx) -> list[Intent]``,
``snapshot()`` and ``restore(state)``. It runs inside the engine's fold, so it must be
deterministic: no clock, no randomness, no I/O, no iteration over sets of strings,
and all of its state must round-trip through ``snapshot()``.

Logic: go long when the close breaks above the last confirmed swing high (a "detector"
event), at most once per swing; exit when the close falls below the last swing low.
"""

from __future__ import annotations

from typing import Any

from engine.events import Intent
from engine.plan import Bar
from engine.strategy import MarketContext


class DetectorDriven:
    """Swing-breakout detector. ``equity_pct`` sizes each entry."""

    def __init__(self, equity_pct: float = 20.0) -> None:
        self.equity_pct = float(equity_pct)
        self.used_high = 0.0  # the swing high already traded (ticks); state

    def on_bar(self, bar: Bar, ctx: MarketContext) -> list[Intent]:
        f = bar.features
        assert bar.candle is not None
        close = bar.candle.close
        high, low = f["swing.high"], f["swing.low"]
        if ctx.position_qty > 0 and close < low:
            return [Intent("exit", block="detector_exit")]
        if ctx.position_qty == 0 and close > high and high != self.used_high:
            self.used_high = high
            return [Intent("enter_long", block="detector_entry", equity_pct=self.equity_pct)]
        return []

    def snapshot(self) -> Any:
        return [self.used_high]

    def restore(self, state: Any) -> None:
        self.used_high = float(state[0])
