"""Small IdeaCards written by tests themselves, so a change to an example card never
silently changes what a test exercises."""

from __future__ import annotations

from pathlib import Path


def ma_cross_card(
    folder: Path,
    *,
    fast: int = 5,
    slow: int = 20,
    timeframe: str = "1m",
    equity_pct: float = 50,
    name: str = "ma_test",
) -> Path:
    """A stop-and-reverse moving-average cross on ``timeframe``."""
    path = folder / f"{name}.yaml"
    path.write_text(
        f"""name: {name}
symbol: BTCUSDT
timeframes:
  execution: {timeframe}
features:
  fast: {{indicator: sma, period: {fast}}}
  slow: {{indicator: sma, period: {slow}}}
blocks:
  - name: long_on_golden_cross
    when: {{cross_above: [fast, slow]}}
    then: {{enter_long: {{equity_pct: {equity_pct}}}}}
  - name: short_on_death_cross
    when: {{cross_below: [fast, slow]}}
    then: {{enter_short: {{equity_pct: {equity_pct}}}}}
risk:
  allow_flip: true
  max_leverage: 3
"""
    )
    return path
