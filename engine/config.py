"""Engine configuration: risk limits and execution defaults, as plain data.

An IdeaCard's ``risk:`` and ``execution:`` sections compile into these; every field
has a default so a card without those sections runs. Money is in 1e-8 quote units,
rates and percentages as documented per field.
"""

from __future__ import annotations

import msgspec


class RiskLimits(msgspec.Struct, frozen=True, gc=False):
    """Checks every intent passes before it becomes an order (0 disables a limit)."""

    max_position_notional: int = 0  # money; 0 = no cap
    max_leverage: float = 10.0  # position notional / equity, checked on entries and adds
    max_open_orders: int = 20
    daily_loss_limit_pct: float = 0.0  # of the day's starting equity; halts new entries
    allow_flip: bool = False  # may an entry in the other direction flip the position?


class ExecutionDefaults(msgspec.Struct, frozen=True, gc=False):
    """How intents become orders when the intent does not say."""

    style: str = "market"  # market | limit | iceberg | twap
    limit_offset_ticks: float = 0.0  # limit price = close -/+ offset (buy/sell)
    limit_timeout_bars: int = 0  # 0 = good till cancelled; else cancel, then market
    slices: int = 1
    slice_every_bars: int = 1
    slice_every_ms: int = 0


class EngineConfig(msgspec.Struct, frozen=True, gc=False):
    risk: RiskLimits = RiskLimits()
    execution: ExecutionDefaults = ExecutionDefaults()
    checkpoint_every: int = 10_000  # emit a Checkpoint every N folded events
    default_equity_pct: float = 10.0  # sizing when an entry intent gives none
