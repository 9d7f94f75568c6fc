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
its vectorised log/cos may use CPU-specific SIMD code. So only
``Generator.random()`` is used, draws are consumed in a fixed order (9 per
candle), and every transform (Box–Muller normals, chi-square from uniforms) is
scalar Python float arithmetic (IEEE-754, plus libm ``log``/``cos``/``sqrt``).
The price path itself is kept in integer ticks, so a last-bit difference in a
libm result could only matter if it moved a value across a rounding boundary.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from engine.events import InstrumentSpec
from engine.instrument import BTCUSDT, Instrument

from .series import CandleSeries

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
    o_col: list[int] = []
    h_col: list[int] = []
    l_col: list[int] = []
    c_col: list[int] = []
    v_col: list[int] = []
    state = _State(price)
    for lo in range(0, n, _CHUNK):
        k = min(_CHUNK, n - lo)
        draws = rng.random(k * _DRAWS).tolist()
        first_hour = (start_ms // 3_600_000 + lo // 60) % 24
        _run(state, draws, k, lo % 60, first_hour, lots_per_btc, o_col, h_col, l_col, c_col, v_col)
    o, h, lw, c = (np.array(col, dtype=np.int64) for col in (o_col, h_col, l_col, c_col))
    vol = np.array(v_col, dtype=np.int64)
    turnover = vol * ((o + h + lw + c) // 4) * inst.notional_unit
    open_ms = start_ms + np.arange(n, dtype=np.int64) * _MINUTE
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

    __slots__ = ("anchor", "eps2", "price", "regime", "var")

    def __init__(self, price: int) -> None:
        self.price = price
        self.anchor = price
        self.var = _SIGMA_BAR**2
        self.eps2 = _SIGMA_BAR**2
        self.regime = 0


def _run(
    st: _State,
    draws: list[float],
    k: int,
    minute: int,
    hour: int,
    lots_per_btc: float,
    o_col: list[int],
    h_col: list[int],
    l_col: list[int],
    c_col: list[int],
    v_col: list[int],
) -> None:
    """Advance ``k`` candles. Draw order per candle: regime, z1, z2, chi x3, wicks x2, volume."""
    log, cos, sqrt, two_pi = math.log, math.cos, math.sqrt, 2 * math.pi
    price, anchor, var, eps2, regime = st.price, st.anchor, st.var, st.eps2, st.regime
    hour_mult = _HOUR_MULT
    base_lots = _BASE_LOTS_PER_SIGMA * lots_per_btc
    for j in range(0, k * _DRAWS, _DRAWS):
        u_reg, u1, u2, c1, c2, c3, w1, w2, uv = draws[j : j + _DRAWS]
        if u_reg < _SWITCH:  # leave the regime for one of the other two
            regime = (regime + 1 + int(u_reg / _SWITCH * 2)) % 3
            anchor = price
        z = sqrt(-2.0 * log(1.0 - u1)) * cos(two_pi * u2)
        chi = -2.0 * log((1.0 - c1) * (1.0 - c2) * (1.0 - c3))
        t = z / sqrt(chi / _NU) * _T_SCALE
        var = _OMEGA + _ALPHA * eps2 + _BETA * var
        sigma = sqrt(var)
        shock = sigma * t
        eps2 = shock * shock
        scale = hour_mult[hour] * _VOL_MULT[regime]
        r = _DRIFT[regime] + shock * scale
        if regime == 0:
            r -= _REVERT * (price - anchor) / anchor
        close = price + round(price * r)
        if close < 1:
            close = 1
        band = price * sigma * scale * _WICK
        high = max(price, close) + round(band * -log(1.0 - w1))
        low = min(price, close) - round(band * -log(1.0 - w2))
        if low < 1:
            low = 1
        size = sigma / _SIGMA_BAR * scale * (0.35 + abs(t)) * (0.25 - 0.75 * log(1.0 - uv))
        o_col.append(price)
        h_col.append(high)
        l_col.append(low)
        c_col.append(close)
        v_col.append(round(base_lots * size))
        price = close
        minute += 1
        if minute == 60:
            minute = 0
            hour = (hour + 1) % 24
    st.price, st.anchor, st.var, st.eps2, st.regime = price, anchor, var, eps2, regime


def is_synthetic(series: CandleSeries) -> bool:
    """True for a series made by ``generate`` (a runner must say so in its output)."""
    return series.source.startswith(SOURCE_PREFIX + "(")
