"""Costs and fill rules of the simulated venue (an IdeaCard's ``sim:`` section)."""

from __future__ import annotations

import msgspec


class SimConfig(msgspec.Struct, frozen=True, gc=False):
    """Defaults are Bybit's base tier for USDT perpetuals."""

    maker_fee_e8: int = 20_000  # 0.02 %
    taker_fee_e8: int = 55_000  # 0.055 %
    slippage_ticks: int = 1  # added against the taker on market and triggered-market fills
    max_volume_pct: int = 0  # 0 = unlimited; else a fill takes at most this % of candle volume
    both_hit: str = "worse"  # stop and target in one candle: "worse" | "better" | "path"
    funding_rate_e8: int = 10_000  # 0.01 % per interval, where funding_series has no rate
    funding_interval_ms: int | None = None  # None: the instrument's (Bybit fundingInterval)
    funding_series: tuple[tuple[int, int], ...] = ()  # (time ms, rate_e8), overrides the constant
    # Margin the venue charges: IM = notional / leverage (Bybit's set-leverage value).
    leverage: int = 10
    # "cross": liquidated when the wallet's equity falls to the maintenance margin (a Bybit
    # unified account's default); "isolated": when the position's own IM is used up.
    margin_mode: str = "cross"
    maintenance_margin_e8: int = 500_000  # 0.5 % of position notional
    liquidation_fee_e8: int = 55_000  # charged on the liquidated notional
