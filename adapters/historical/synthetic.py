"""The built-in market: seeded, realistic 1-minute BTC-like candles.

What makes it look like BTC: GARCH(1,1) volatility (calm and wild stretches
cluster), Student-t shocks with 6 degrees of freedom (fat tails), a hidden regime
that switches between a mean-reverting range and up or down trends (about one
switch a day), a US/EU-session intraday volatility profile, wicks that scale with
volatility, and volume that rises with volatility and with the size of the move.
Candles are on the instrument's grid: open equals the previous close, high and
low contain open and close, volume in lots, turnover = volume * mean(OHLC).

Same seed, same candles, on every machine. numpy's bit generator (PCG64) is
stable across versions, but its distribution methods are not promised to be, and
its vectorised log/cos may run CPU-specific SIMD code. So only
``Generator.random()`` is used, draws are consumed in a fixed order (9 per
candle, independent of chunking), and every transform (Box–Muller normals,
chi-square from uniforms, exponentials) uses ``detmath``: log and cos written
with IEEE-754 basic operations only, which are correctly rounded on every CPU.
The sequential part (GARCH variance, the price path in integer ticks) is a
plain Python loop over floats and ints, equally exact.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from engine.events import InstrumentSpec
from engine.instrument import BTCUSDT, Instrument

from . import detmath
from .series import CandleSeries

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

DEFAULT_START_MS: Final = 1_704_067_200_000  # 2024-01-01 00:00 UTC
DEFAULT_N: Final = 43_200  # 30 days of minutes
SOURCE_PREFIX: Final = "synthetic"
_DRAWS: Final = 9  # uniforms per candle, in this order: see _draw_order below
_CHUNK: Final = 65_536
_MINUTE: Final = 60_000

# Per-minute volatility ~0.07% (about 2.7% a day), GARCH persistence 0.98.
_SIGMA_BAR: Final = 7e-4
_ALPHA: Final = 0.06
_BETA: Final = 0.92
_OMEGA: Final = _SIGMA_BAR**2 * (1 - _ALPHA - _BETA)
_NU: Final = 6  # Student-t degrees of freedom (chi-square from 3 exponentials)
_T_SCALE: Final = math.sqrt((_NU - 2) / _NU)  # unit variance
_SWITCH: Final = 1 / 1_440  # chance per minute of leaving the current regime
_DRIFT: Final = (0.0, 2.5e-5, -2.5e-5)  # range, up trend, down trend (per minute)
_VOL_MULT: Final = (0.85, 1.15, 1.25)
_REVERT: Final = 2e-3  # in a range: pull per minute towards the range's anchor
_WICK: Final = 0.55  # mean wick length in sigmas
_BASE_LOTS_PER_SIGMA: Final = 30.0  # BTC per minute at average volatility
# Volatility by UTC hour: quiet Asian night, busier EU open, busiest US open.
_HOUR_MULT: Final = (
    0.85, 0.85, 0.8, 0.75, 0.75, 0.75, 0.8, 0.9, 1.0, 1.05, 1.0, 1.0,
    1.05, 1.25, 1.4, 1.35, 1.2, 1.1, 1.0, 0.95, 0.95, 0.9, 0.9, 0.85,
)  # fmt: skip


def generate(
    seed: int = 7,
    n: int = DEFAULT_N,
    start_ms: int = DEFAULT_START_MS,
    instrument: Instrument | InstrumentSpec = BTCUSDT,
    *,
    start_price: str = "42000",
) -> CandleSeries:
    """``n`` one-minute candles from ``start_ms`` (aligned to the minute), seeded."""
    inst = instrument if isinstance(instrument, Instrument) else Instrument(instrument)
    if n < 0:
        raise ValueError(f"n={n} must be >= 0")
    if start_ms % _MINUTE:
        raise ValueError(f"start_ms={start_ms} is not on a minute boundary")
    price = inst.price_to_ticks(start_price, "ROUND_HALF_EVEN")
    lots_per_btc = 1 / float(inst.step)
    rng = np.random.Generator(np.random.PCG64(seed))
    open_ms = start_ms + np.arange(n, dtype=np.int64) * _MINUTE
    hour_mult = np.array(_HOUR_MULT)[(open_ms // 3_600_000) % 24]
    state = _State(price)
    parts: list[tuple[I64, I64, I64, I64, I64]] = []
    for lo in range(0, n, _CHUNK):
        k = min(_CHUNK, n - lo)
        draws = rng.random(k * _DRAWS).reshape(k, _DRAWS)
        parts.append(_chunk(state, draws, hour_mult[lo : lo + k], lots_per_btc))
    o, h, lw, c, vol = (
        np.concatenate([p[j] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        for j in range(5)
    )
    turnover = vol * ((o + h + lw + c) // 4) * inst.notional_unit
    return CandleSeries(
        inst,
        "1m",
        open_ms=open_ms,
        close_ms=open_ms + _MINUTE,
        open=o,
        high=h,
        low=lw,
        close=c,
        volume=vol,
        turnover=turnover,
        source=f"{SOURCE_PREFIX}(seed={seed})",
    )


class _State:
    """The generator's memory between chunks."""

    __slots__ = ("anchor", "coef", "price", "regime", "var")

    def __init__(self, price: int) -> None:
        self.price = price
        self.anchor = price
        self.var = _SIGMA_BAR**2
        self.coef = _ALPHA + _BETA  # as if the previous shock were exactly one sigma
        self.regime = 0


def _chunk(
    st: _State, draws: F64, hour_mult: F64, lots_per_btc: float
) -> tuple[I64, I64, I64, I64, I64]:
    """``len(draws)`` candles. Draw columns: regime, z1, z2, chi x3, wick up, wick down, volume."""
    k = len(draws)
    u_reg = draws[:, 0]
    # Student-t shocks with unit variance: normal (Box-Muller) over sqrt(chi-square / nu).
    z = np.sqrt(-2.0 * detmath.log(1.0 - draws[:, 1])) * detmath.cos_turn(draws[:, 2])
    chi = -2.0 * detmath.log((1.0 - draws[:, 3]) * (1.0 - draws[:, 4]) * (1.0 - draws[:, 5]))
    t = z / np.sqrt(chi / _NU) * _T_SCALE
    coef = (_ALPHA * (t * t) + _BETA).tolist()  # var[i+1] = omega + coef[i] * var[i]
    # Regimes: a switch at candle i leaves the current regime for one of the other two.
    switch = np.flatnonzero(u_reg < _SWITCH).tolist()
    regime = np.empty(k, dtype=np.int64)
    current, prev = st.regime, 0
    for i in switch:
        regime[prev:i] = current
        current = (current + 1 + int(u_reg[i] / _SWITCH * 2)) % 3
        prev = i
    regime[prev:] = current
    # Variance is sequential (GARCH); the loop is two float operations per candle.
    var_list = [0.0] * k
    var, carry = st.var, st.coef
    for i in range(k):
        var = _OMEGA + carry * var
        var_list[i] = var
        carry = coef[i]
    st.var, st.coef = var, carry
    sigma = np.sqrt(np.array(var_list))
    scale = hour_mult * np.array(_VOL_MULT)[regime]
    r_base = (np.array(_DRIFT)[regime] + sigma * t * scale).tolist()
    # The price path, in integer ticks, one regime segment at a time; a range pulls
    # back towards the price at which it began.
    closes = [0] * k
    price, anchor = st.price, st.anchor
    bounds = [0, *switch, k]
    for seg in range(len(bounds) - 1):
        lo, hi = bounds[seg], bounds[seg + 1]
        if lo == hi:
            continue
        if seg > 0:
            anchor = price
        if regime[lo] == 0:
            for i in range(lo, hi):
                price += round(price * (r_base[i] - _REVERT * (price - anchor) / anchor))
                if price < 1:
                    price = 1
                closes[i] = price
        else:
            for i in range(lo, hi):
                price += round(price * r_base[i])
                if price < 1:
                    price = 1
                closes[i] = price
    opens = [st.price, *closes[:-1]]
    st.price, st.anchor, st.regime = price, anchor, current
    o = np.array(opens, dtype=np.int64)
    c = np.array(closes, dtype=np.int64)
    band = o * (sigma * scale * _WICK)
    high = np.maximum(o, c) + np.rint(band * -detmath.log(1.0 - draws[:, 6])).astype(np.int64)
    low = np.minimum(o, c) - np.rint(band * -detmath.log(1.0 - draws[:, 7])).astype(np.int64)
    low = np.maximum(low, 1)
    noise = 0.25 - 0.75 * detmath.log(1.0 - draws[:, 8])
    size = sigma / _SIGMA_BAR * scale * (0.35 + np.abs(t)) * noise
    vol = np.rint(_BASE_LOTS_PER_SIGMA * lots_per_btc * size).astype(np.int64)
    return o, high, low, c, vol


def is_synthetic(series: CandleSeries) -> bool:
    """True for a series made by ``generate`` (a runner must say so in its output)."""
    return series.source.startswith(SOURCE_PREFIX + "(")
