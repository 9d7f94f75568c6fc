"""Exact fixed-point numbers: price in ticks, quantity in lots, money in 1e-8 quote units.

The venue speaks decimal strings ("81794.8", "0.001"); the engine speaks ints. The
conversions live here and only here, at the adapter edge, and they are exact:

* ``price_to_ticks("81794.8")`` is ``817948`` for a 0.1 tick. A price that is not on
  the tick grid raises ``OffGridError`` unless a ``rounding`` mode (a ``decimal``
  rounding constant such as ``ROUND_HALF_EVEN``) is given.
* The notional of ``ticks`` at ``lots`` is ``ticks * lots * notional_unit`` money units,
  where ``notional_unit = tick_size * qty_step * 1e8`` must be a whole number
  (true for every Bybit linear contract; an instrument where it is not is refused).
* Fees are ``notional * rate_e8 / 1e8`` rounded *up* to the next money unit when
  paid (a backtest never undercharges), and towards zero when rebated.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Final

from engine.events import InstrumentSpec

MONEY_SCALE: Final = 10**8
RATE_SCALE: Final = 10**8  # fee and funding rates in 1e-8 (0.055% == 55_000)
_MONEY_QUANTUM: Final = Decimal(1).scaleb(-8)


class OffGridError(ValueError):
    """A decimal value is not a whole multiple of its grid step and no rounding was asked."""

    def __init__(self, what: str, value: str, step: str) -> None:
        super().__init__(f"{what} {value} is not a multiple of {step}; pass a rounding mode")
        self.what, self.value, self.step = what, value, step


class InstrumentError(ValueError):
    """An instrument spec that cannot be used (bad number, zero step, inexact notional unit)."""


def _dec(what: str, value: str | Decimal | int) -> Decimal:
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InstrumentError(f"{what}: {value!r} is not a decimal number") from None
    if not d.is_finite():
        raise InstrumentError(f"{what}: {value!r} is not a finite number")
    return d


def _to_steps(what: str, value: str | Decimal | int, step: Decimal, rounding: str | None) -> int:
    q = _dec(what, value) / step
    whole = q.to_integral_value(rounding=rounding or ROUND_FLOOR)
    if whole != q and rounding is None:
        raise OffGridError(what, str(value), str(step))
    return int(whole)


def _from_steps(n: int, step: Decimal) -> str:
    # Keep the step's exponent so "0.1" steps print as "81794.8", never "8.17948E+4".
    return f"{(Decimal(n) * step).quantize(step):f}"


def money_from_str(value: str | Decimal | int, rounding: str | None = None) -> int:
    """A decimal quote amount to money units (1e-8); inexact input needs ``rounding``."""
    return _to_steps("money", value, _MONEY_QUANTUM, rounding)


def money_to_str(money: int) -> str:
    """Money units to a decimal string with 8 places ("12.50000000")."""
    return _from_steps(money, _MONEY_QUANTUM)


def rate_from_str(value: str | Decimal | float) -> int:
    """A rate such as "0.00055" to 1e-8 units, rounding half-even at the 8th decimal."""
    return _to_steps("rate", str(value), _MONEY_QUANTUM, "ROUND_HALF_EVEN")


def fee_for(notional: int, rate_e8: int) -> int:
    """Fee in money for a notional in money: paid fees round up, rebates toward zero."""
    num = notional * rate_e8
    if num >= 0:
        return -(-num // RATE_SCALE)  # ceiling
    return -((-num) // RATE_SCALE)  # a rebate: toward zero


class Instrument:
    """An ``InstrumentSpec`` with its grids precomputed; all conversions go through it."""

    __slots__ = (
        "spec",
        "symbol",
        "tick",
        "step",
        "notional_unit",
        "min_lots",
        "max_lots",
        "min_notional",
        "price_decimals",
        "qty_decimals",
        "funding_interval_ms",
    )

    def __init__(self, spec: InstrumentSpec) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.tick = _dec("tick_size", spec.tick_size)
        self.step = _dec("qty_step", spec.qty_step)
        if self.tick <= 0 or self.step <= 0:
            raise InstrumentError(f"{spec.symbol}: tick_size and qty_step must be > 0")
        unit = self.tick * self.step * MONEY_SCALE
        if unit != unit.to_integral_value():
            raise InstrumentError(
                f"{spec.symbol}: tick_size*qty_step ({self.tick * self.step}) is finer than 1e-8"
            )
        self.notional_unit = int(unit)
        self.min_lots = _to_steps("min_qty", spec.min_qty, self.step, ROUND_CEILING)
        self.max_lots = _to_steps("max_qty", spec.max_qty or "0", self.step, ROUND_FLOOR)
        self.min_notional = money_from_str(spec.min_notional or "0", ROUND_CEILING)
        self.price_decimals = max(0, -int(self.tick.as_tuple().exponent))
        self.qty_decimals = max(0, -int(self.step.as_tuple().exponent))
        if spec.funding_interval < 0:
            raise InstrumentError(f"{spec.symbol}: funding_interval must be >= 0 minutes")
        # 0: not a perpetual (no funding); else Bybit's fundingInterval in ms.
        self.funding_interval_ms = spec.funding_interval * 60_000

    def __repr__(self) -> str:
        return f"Instrument({self.symbol}, tick={self.tick}, step={self.step})"

    def price_to_ticks(self, price: str | Decimal | int, rounding: str | None = None) -> int:
        return _to_steps(f"{self.symbol} price", price, self.tick, rounding)

    def ticks_to_price(self, ticks: int) -> str:
        return _from_steps(ticks, self.tick)

    def ticks_to_float(self, ticks: float) -> float:
        """For reports and indicators only."""
        return float(ticks) * float(self.tick)

    def qty_to_lots(self, qty: str | Decimal | int, rounding: str | None = None) -> int:
        return _to_steps(f"{self.symbol} qty", qty, self.step, rounding)

    def lots_to_qty(self, lots: int) -> str:
        return _from_steps(lots, self.step)

    def notional(self, ticks: int, lots: int) -> int:
        """Money value of ``lots`` at ``ticks`` (exact)."""
        return ticks * lots * self.notional_unit


# Bybit linear BTCUSDT filters (from instruments-info), the default instrument.
BTCUSDT: Final = InstrumentSpec(
    symbol="BTCUSDT",
    tick_size="0.1",
    qty_step="0.001",
    min_qty="0.001",
    min_notional="5",
    max_qty="1190",
    base_coin="BTC",
    quote_coin="USDT",
    max_leverage="100",
)
