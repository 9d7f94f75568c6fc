"""Float columns from a file to engine integers: prices to ticks, volume to lots, money.

Why the float route is exact for prices: a real price is a short decimal, the
nearest double is within a relative 2**-53 of it, and scaling by 1/tick (one more
rounding) keeps the quotient within about 2.3e-16 * N of the true tick count N.
For any N below 4e9 ticks (BTC at 400 million USDT with a 0.1 tick) that is far
less than ``TICK_TOLERANCE``, so rounding recovers N exactly. A quotient further
than ``TICK_TOLERANCE`` from a whole number is genuinely off the grid (an extra
decimal, or a different tick size) and is reported, not rounded, unless the
caller asked for rounding (nearest tick, ties to even).

Volume may carry more decimals than the instrument's qty step (exchanges report
base volume to 8 places; Bybit BTCUSDT trades in 0.001), so it is rounded to the
nearest lot, ties to even. The quotient is first rounded to 6 decimals so that a
decimal tie such as 0.0005 / 0.001 is seen as the tie it is, not as float noise.
Turnover (quote volume) becomes money units (1e-8) rounded half-even; it is a
report figure, never used for accounting, so float precision (~16 digits) is fine.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

from engine.instrument import MONEY_SCALE, Instrument

from .raw import F64, I64, RawCandles

TICK_TOLERANCE: Final = 1e-6


def _scaled(values: F64, step: Decimal) -> F64:
    inverse = 1 / step
    if inverse == inverse.to_integral_value():  # 0.1 -> multiply by 10: one rounding only
        return values * float(inverse)
    return values / float(step)


def prices_to_ticks(
    raw: RawCandles, name: str, values: F64, instrument: Instrument, *, round_prices: bool = False
) -> I64:
    """Prices to ticks; an off-grid price raises a DataError naming its row."""
    bad = bad_price_mask(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise raw.error(i, f"{name} price is not a positive number", repr(float(values[i])))
    scaled = _scaled(values, instrument.tick)
    ticks = np.rint(scaled)
    if not round_prices:
        off = _off_tick(scaled, ticks)  # the quotient and its rounding, computed once
        if off.any():
            i = int(np.argmax(off))
            raise raw.error(
                i,
                f"{name} price is not on the {instrument.symbol} tick grid",
                repr(float(values[i])),
                f"a multiple of {instrument.tick} (pass an instrument with the file's "
                "tick size, or round_prices=True)",
            )
    return ticks.astype(np.int64)


def bad_price_mask(values: F64) -> npt.NDArray[np.bool_]:
    """Prices that are not positive finite numbers."""
    return ~np.isfinite(values) | (values <= 0)


def off_tick_mask(values: F64, instrument: Instrument) -> npt.NDArray[np.bool_]:
    """Prices further than ``TICK_TOLERANCE`` from a whole tick."""
    with np.errstate(invalid="ignore"):
        q = _scaled(values, instrument.tick)
        return _off_tick(q, np.rint(q))


def _off_tick(scaled: F64, ticks: F64) -> npt.NDArray[np.bool_]:
    """Where a price in ticks (``scaled``) is further than ``TICK_TOLERANCE`` from its
    rounding (``ticks``)."""
    with np.errstate(invalid="ignore"):
        diff = np.subtract(scaled, ticks)
        np.abs(diff, out=diff)
        return diff > TICK_TOLERANCE


def bad_amount_mask(values: F64) -> npt.NDArray[np.bool_]:
    """Volumes or turnovers that are negative or not numbers."""
    return ~np.isfinite(values) | (values < 0)


def volume_to_lots(raw: RawCandles, values: F64, instrument: Instrument) -> I64:
    """Base volume to lots, nearest lot, ties to even (see module doc)."""
    bad = bad_amount_mask(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise raw.error(i, "volume is negative or not a number", repr(float(values[i])), ">= 0")
    return np.rint(np.round(_scaled(values, instrument.step), 6)).astype(np.int64)


def turnover_to_money(raw: RawCandles, values: F64 | None) -> I64:
    """Quote volume to money units (1e-8), half-even; zeros when the file has none."""
    if values is None:
        return np.zeros(len(raw), dtype=np.int64)
    bad = bad_amount_mask(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise raw.error(i, "turnover is negative or not a number", repr(float(values[i])), ">= 0")
    return np.rint(values * MONEY_SCALE).astype(np.int64)
