"""A Python strategy for tests/test_compiled.py that puts ``avg_entry`` and
``unrealized_pct`` into its intents unrounded, so a last-bit difference reaches the log."""

from __future__ import annotations

from typing import Any

from engine.events import Intent
from engine.plan import Bar
from engine.strategy import MarketContext


class AvgEntryProbe:
    """Enter every ``every`` bars (int ``equity_pct``), set levels from the average entry."""

    def __init__(self, equity_pct: int = 40, every: int = 9) -> None:
        self.equity_pct = equity_pct
        self.every = every

    def on_bar(self, bar: Bar, ctx: MarketContext) -> list[Intent]:
        if ctx.position_qty == 0:
            if bar.index % self.every:
                return []
            side = "enter_long" if bar.index % (2 * self.every) else "enter_short"
            return [Intent(side, block="entry", equity_pct=self.equity_pct)]
        if ctx.bars_in_trade >= 4:
            return [Intent("exit", block="exit")]
        far = 0.5 + abs(ctx.unrealized_pct) if ctx.position_qty > 0 else 1.5
        return [Intent("set_take_profit", block="levels", price=ctx.avg_entry * (1 + far))]

    def snapshot(self) -> Any:
        return []

    def restore(self, state: Any) -> None:
        pass
