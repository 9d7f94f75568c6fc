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


#: A plain SMA cross long-only card for any ``{symbol}`` (instrument tests).
SYMBOL_CARD = """\
name: alt
symbol: {symbol}
features:
  f: {{indicator: sma, period: 5}}
  s: {{indicator: sma, period: 20}}
blocks:
  - when: {{cross_above: [f, s]}}
    then: {{enter_long: {{equity_pct: 50}}}}
  - when: {{cross_below: [f, s]}}
    then: exit
"""


def symbol_card(folder: Path, symbol: str) -> Path:
    """``SYMBOL_CARD`` for ``symbol`` written to ``folder/<symbol>.yaml``."""
    path = folder / f"{symbol.lower()}.yaml"
    path.write_text(SYMBOL_CARD.format(symbol=symbol))
    return path
