"""Every indicator against an independent whole-series numpy reference.

The references below are written from the textbook definitions over the full
series (sliding windows, vectorised true range, a plain Wilder loop), not from the
incremental code. Agreement is to 1e-9 relative, or 1e-9 of the price magnitude
absolutely near zero. Also used by the other indicator tests: ``Candles``,
``random_candles``, ``real_candles`` and ``run``.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from engine.indicators import INDICATORS, Indicator, make_indicator

DAY_MS = 86_400_000
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto"
REAL_5M = DATA / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
REAL_1H = DATA / "binance_spot_BTCUSDT_1h_20180209_20250331.csv"

Candles = dict[str, np.ndarray]  # ts, o, h, l, c, v: int64 arrays of equal length


# --------------------------------------------------------------------------- data


def random_candles(seed: int, n: int, base: int, spread: int, interval: int) -> Candles:
    """A random-walk OHLCV series in ticks/lots; a small ``spread`` makes many ties."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(-spread, spread + 1, size=n)
    c = np.maximum(1, base + np.cumsum(steps))
    o = np.empty(n, dtype=np.int64)
    o[0] = base
    gaps = rng.integers(-spread, spread + 1, size=n - 1) * (rng.random(n - 1) < 0.3)
    o[1:] = np.maximum(1, c[:-1] + gaps)  # sometimes gap away from the previous close
    wick_up = rng.integers(0, spread + 1, size=n)
    wick_dn = rng.integers(0, spread + 1, size=n)
    h = np.maximum(o, c) + wick_up
    lo = np.maximum(1, np.minimum(o, c) - wick_dn)
    v = rng.integers(0, 1000, size=n) * (rng.random(n) > 0.1)  # some zero-volume bars
    start = int(rng.integers(0, 3)) * DAY_MS + int(rng.integers(0, DAY_MS // interval)) * interval
    ts = start + interval * np.arange(1, n + 1, dtype=np.int64)
    return {
        "ts": ts.astype(np.int64),
        "o": o.astype(np.int64),
        "h": h.astype(np.int64),
        "l": lo.astype(np.int64),
        "c": c.astype(np.int64),
        "v": v.astype(np.int64),
    }


@st.composite
def candle_series(draw: st.DrawFn, min_size: int = 1, max_size: int = 250) -> Candles:
    """Hypothesis: a random OHLCV series of random length, price level and tie density."""
    return random_candles(
        seed=draw(st.integers(0, 2**32 - 1)),
        n=draw(st.integers(min_size, max_size)),
        base=draw(st.sampled_from([5, 1_000, 817_948])),
        spread=draw(st.sampled_from([1, 3, 40, 2_000])),
        interval=draw(st.sampled_from([60_000, 300_000, 3_600_000])),
    )


def load_csv(path: Path, interval_ms: int, price_dp: int, qty_dp: int, rows: int = 0) -> Candles:
    """Candles from a real CSV (first column: bar open time, UTC), read in place.

    Prices become ticks of 10**-price_dp and volumes lots of 10**-qty_dp; ``ts`` is the
    close time (open + interval). ``rows`` = 0 reads the whole file.
    """
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    cols: dict[str, list[int]] = {k: [] for k in ("ts", "o", "h", "l", "c", "v")}
    tick, lot = 10**price_dp, 10**qty_dp
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for i, (when, o, h, lo, c, v, *_) in enumerate(reader):
            if i == rows and rows:
                break
            opened = datetime.fromisoformat(when).replace(tzinfo=UTC)
            cols["ts"].append(int(opened.timestamp() * 1000) + interval_ms)
            cols["o"].append(round(float(o) * tick))
            cols["h"].append(round(float(h) * tick))
            cols["l"].append(round(float(lo) * tick))
            cols["c"].append(round(float(c) * tick))
            cols["v"].append(round(float(v) * lot))
    return {k: np.array(x, dtype=np.int64) for k, x in cols.items()}


@functools.lru_cache(maxsize=1)
def real_candles(rows: int = 6_000) -> Candles:
    """The first ``rows`` 5m Bybit BTCUSDT candles, ticks of 0.1 and lots of 0.001."""
    return load_csv(REAL_5M, 300_000, 1, 3, rows)


def run(ind: Indicator, d: Candles, outputs: tuple[str, ...] | None = None) -> np.ndarray:
    """Feed every candle; return an (n, k) array of the outputs after each candle."""
    names = outputs or ind.outputs
    out = np.empty((len(d["c"]), len(names)))
    rows = zip(*(d[k].tolist() for k in ("ts", "o", "h", "l", "c", "v")))
    for i, (ts, o, h, lo, c, v) in enumerate(rows):
        ind.update(ts, o, h, lo, c, v)
        for j, name in enumerate(names):
            out[i, j] = ind.get(name)
    return out


# --------------------------------------------------------------------------- references


def src(d: Candles, name: str) -> np.ndarray:
    o, h, lo, c = (d[k].astype(float) for k in ("o", "h", "l", "c"))
    return {
        "close": c,
        "open": o,
        "high": h,
        "low": lo,
        "hl2": (h + lo) / 2,
        "hlc3": (h + lo + c) / 3,
        "ohlc4": (o + h + lo + c) / 4,
        "volume": d["v"].astype(float),
    }[name]


def _padded(x: np.ndarray, n: int) -> np.ndarray:
    """x right-aligned in an array of length n, NaN in front."""
    out = np.full(n, np.nan)
    if len(x):
        out[n - len(x) :] = x
    return out


def _windows(x: np.ndarray, p: int) -> np.ndarray:
    return sliding_window_view(x, p) if len(x) >= p else np.empty((0, p))


def ref_sma(x: np.ndarray, period: int) -> np.ndarray:
    return _padded(_windows(x, period).mean(axis=1), len(x))


def ref_wma(x: np.ndarray, period: int) -> np.ndarray:
    w = np.arange(1, period + 1, dtype=float)
    return _padded(_windows(x, period) @ w / w.sum(), len(x))


def ref_ema(x: np.ndarray, period: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) < period:
        return out
    alpha = 2 / (period + 1)
    e = x[:period].mean()
    out[period - 1] = e
    for i in range(period, len(x)):
        e = alpha * x[i] + (1 - alpha) * e
        out[i] = e
    return out


def _wilder(x: np.ndarray, period: int) -> np.ndarray:
    """Wilder's smoothing of x: mean of the first ``period``, then (prev*(p-1)+x)/p."""
    out = np.full(len(x), np.nan)
    if len(x) < period:
        return out
    a = x[:period].mean()
    out[period - 1] = a
    for i in range(period, len(x)):
        a = a + (x[i] - a) / period
        out[i] = a
    return out


def ref_rsi(x: np.ndarray, period: int) -> np.ndarray:
    d = np.diff(x)
    ag = _wilder(np.clip(d, 0, None), period)
    al = _wilder(np.clip(-d, 0, None), period)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100 - 100 / (1 + ag / al)
    rsi = np.where(al == 0, np.where(ag > 0, 100.0, 50.0), rsi)
    rsi[np.isnan(ag)] = np.nan
    return np.concatenate([[np.nan], rsi])[: len(x)]


def ref_atr(d: Candles, period: int) -> np.ndarray:
    h, lo, c = (d[k].astype(float) for k in ("h", "l", "c"))
    pc = np.concatenate([[np.nan], c[:-1]])
    tr = np.fmax(h - lo, np.fmax(np.abs(h - pc), np.abs(lo - pc)))
    return _wilder(tr, period)


def ref_stdev(x: np.ndarray, period: int, ddof: int = 0) -> np.ndarray:
    return _padded(_windows(x, period).std(axis=1, ddof=ddof), len(x))


def ref_bollinger(x: np.ndarray, period: int, mult: float) -> np.ndarray:
    mid = ref_sma(x, period)
    sd = ref_stdev(x, period)
    up, dn = mid + mult * sd, mid - mult * sd
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(mid == 0, np.nan, (up - dn) / mid)
    return np.column_stack([mid, up, dn, width])


def ref_macd(x: np.ndarray, fast: int, slow: int, signal: int) -> np.ndarray:
    m = ref_ema(x, fast) - ref_ema(x, slow)
    sig = _padded(ref_ema(m[slow - 1 :], signal), len(x)) if len(x) >= slow else m * np.nan
    m = np.where(np.isnan(sig), np.nan, m)
    return np.column_stack([m, sig, m - sig])


def ref_roc(x: np.ndarray, period: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    old, new = x[:-period], x[period:]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[period:] = np.where(old == 0, np.nan, (new / old - 1) * 100)
    return out


def ref_highest(x: np.ndarray, period: int) -> np.ndarray:
    return _padded(_windows(x, period).max(axis=1), len(x))


def ref_lowest(x: np.ndarray, period: int) -> np.ndarray:
    return _padded(_windows(x, period).min(axis=1), len(x))


def ref_donchian(d: Candles, period: int) -> np.ndarray:
    up = ref_highest(d["h"].astype(float), period)
    dn = ref_lowest(d["l"].astype(float), period)
    return np.column_stack([up, dn, (up + dn) / 2])


def ref_vwap(d: Candles, source: str) -> np.ndarray:
    """Per UTC day of (close time - 1 ms): cumulative price*volume over volume."""
    price = src(d, source)
    v = d["v"].astype(float)
    day = (d["ts"] - 1) // DAY_MS
    out = np.empty(len(price))
    for dd in np.unique(day):
        sel = day == dd
        cpv = np.cumsum(price[sel] * v[sel])
        cv = np.cumsum(v[sel])
        with np.errstate(divide="ignore", invalid="ignore"):
            out[sel] = np.where(cv > 0, cpv / cv, price[sel])
    return out


def ref_swing(d: Candles, left: int, right: int) -> np.ndarray:
    """Brute force: bar p is a pivot high iff h[p] > every h in its left bars and >=
    every h in its right bars; it is reported at bar p + right and held."""
    h, lo = d["h"], d["l"]
    n = len(h)
    out = np.full((n, 4), np.nan)
    high = low = np.nan
    hbar = lbar = -1
    for t in range(n):
        p = t - right
        if p - left >= 0:
            if all(h[p] > h[j] for j in range(p - left, p)) and all(
                h[p] >= h[j] for j in range(p + 1, t + 1)
            ):
                high, hbar = float(h[p]), p
            if all(lo[p] < lo[j] for j in range(p - left, p)) and all(
                lo[p] <= lo[j] for j in range(p + 1, t + 1)
            ):
                low, lbar = float(lo[p]), p
        out[t] = [
            high,
            low,
            t - hbar if hbar >= 0 else np.nan,
            t - lbar if lbar >= 0 else np.nan,
        ]
    return out


# --------------------------------------------------------------------------- cases

Ref = Callable[[Candles], np.ndarray]

# name, params, reference, and per output the scale of its absolute tolerance:
# p = price level (max high), v = volume level, h = 100 (percent-like), u = 1.
CASES: list[tuple[str, dict[str, Any], Ref, str]] = [
    ("sma", {"period": 1}, lambda d: ref_sma(src(d, "close"), 1), "p"),
    ("sma", {"period": 7}, lambda d: ref_sma(src(d, "close"), 7), "p"),
    ("sma", {"period": 20, "source": "hlc3"}, lambda d: ref_sma(src(d, "hlc3"), 20), "p"),
    ("sma", {"period": 5, "source": "volume"}, lambda d: ref_sma(src(d, "volume"), 5), "v"),
    ("ema", {"period": 10}, lambda d: ref_ema(src(d, "close"), 10), "p"),
    ("ema", {"period": 3, "source": "hl2"}, lambda d: ref_ema(src(d, "hl2"), 3), "p"),
    ("wma", {"period": 9}, lambda d: ref_wma(src(d, "close"), 9), "p"),
    ("wma", {"period": 4, "source": "ohlc4"}, lambda d: ref_wma(src(d, "ohlc4"), 4), "p"),
    ("rsi", {"period": 14}, lambda d: ref_rsi(src(d, "close"), 14), "h"),
    ("rsi", {"period": 2, "source": "open"}, lambda d: ref_rsi(src(d, "open"), 2), "h"),
    ("atr", {"period": 14}, lambda d: ref_atr(d, 14), "p"),
    ("atr", {"period": 1}, lambda d: ref_atr(d, 1), "p"),
    (
        "bollinger",
        {"period": 20, "mult": 2.0},
        lambda d: ref_bollinger(src(d, "close"), 20, 2.0),
        "pppu",
    ),
    (
        "bollinger",
        {"period": 5, "mult": 1.5, "source": "hl2"},
        lambda d: ref_bollinger(src(d, "hl2"), 5, 1.5),
        "pppu",
    ),
    ("macd", {}, lambda d: ref_macd(src(d, "close"), 12, 26, 9), "ppp"),
    (
        "macd",
        {"fast": 3, "slow": 7, "signal": 4},
        lambda d: ref_macd(src(d, "close"), 3, 7, 4),
        "ppp",
    ),
    ("stdev", {"period": 10}, lambda d: ref_stdev(src(d, "close"), 10), "p"),
    (
        "stdev",
        {"period": 6, "ddof": 1, "source": "hlc3"},
        lambda d: ref_stdev(src(d, "hlc3"), 6, 1),
        "p",
    ),
    ("roc", {"period": 10}, lambda d: ref_roc(src(d, "close"), 10), "h"),
    ("roc", {"period": 3, "source": "volume"}, lambda d: ref_roc(src(d, "volume"), 3), "h"),
    ("highest", {"period": 12}, lambda d: ref_highest(src(d, "high"), 12), "p"),
    ("highest", {"period": 3, "source": "close"}, lambda d: ref_highest(src(d, "close"), 3), "p"),
    ("lowest", {"period": 12}, lambda d: ref_lowest(src(d, "low"), 12), "p"),
    ("lowest", {"period": 5, "source": "hl2"}, lambda d: ref_lowest(src(d, "hl2"), 5), "p"),
    ("donchian", {"period": 20}, lambda d: ref_donchian(d, 20), "ppp"),
    ("vwap", {}, lambda d: ref_vwap(d, "hlc3"), "p"),
    ("vwap", {"source": "close"}, lambda d: ref_vwap(d, "close"), "p"),
    ("swing", {"left": 2, "right": 2}, lambda d: ref_swing(d, 2, 2), "ppuu"),
    ("swing", {"left": 3, "right": 0}, lambda d: ref_swing(d, 3, 0), "ppuu"),
    ("swing", {"left": 1, "right": 4}, lambda d: ref_swing(d, 1, 4), "ppuu"),
]
IDS = [
    f"{name}-{'-'.join(f'{k}={v}' for k, v in p.items()) or 'defaults'}" for name, p, *_ in CASES
]


def assert_matches(got: np.ndarray, ref: np.ndarray, d: Candles, tol: str, what: str) -> None:
    """Same NaN pattern, and each value within 1e-9 relative or 1e-9 * its scale absolute."""
    ref = ref.reshape(got.shape)
    scales = {"p": float(d["h"].max()), "v": float(max(1, d["v"].max())), "h": 100.0, "u": 1.0}
    atol = np.array([1e-9 * scales[k] for k in tol])
    assert np.array_equal(np.isnan(got), np.isnan(ref)), f"{what}: NaN pattern differs"
    ok = np.isclose(got, ref, rtol=1e-9, atol=atol, equal_nan=True)
    if not ok.all():
        i = int(np.argwhere(~ok)[0][0])
        raise AssertionError(f"{what}: first mismatch at bar {i}: {got[i]} != {ref[i]}")


def check_case(name: str, params: dict[str, Any], ref: Ref, tol: str, d: Candles) -> None:
    got = run(make_indicator(name, params), d)
    assert_matches(got, ref(d), d, tol, f"{name}{params}")


@pytest.mark.parametrize(("name", "params", "ref", "tol"), CASES, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(d=candle_series())
def test_matches_reference_on_random_series(
    name: str, params: dict[str, Any], ref: Ref, tol: str, d: Candles
) -> None:
    check_case(name, params, ref, tol, d)


@pytest.mark.parametrize(("name", "params", "ref", "tol"), CASES, ids=IDS)
def test_matches_reference_on_real_btc_5m(
    name: str, params: dict[str, Any], ref: Ref, tol: str
) -> None:
    check_case(name, params, ref, tol, real_candles())


def test_every_registered_indicator_has_a_reference_case() -> None:
    assert {name for name, *_ in CASES} == set(INDICATORS)


def test_real_data_is_plausible() -> None:
    """Guard the loader: 5m bars, 0.1 ticks, high >= low, spanning several UTC days."""
    d = real_candles()
    assert (np.diff(d["ts"]) == 300_000).mean() > 0.99
    assert (d["h"] >= d["l"]).all() and (d["h"] >= d["c"]).all()
    assert len(np.unique((d["ts"] - 1) // DAY_MS)) > 10


@pytest.mark.soak
@pytest.mark.parametrize(("name", "params", "ref", "tol"), CASES, ids=IDS)
def test_matches_reference_on_full_real_files(
    name: str, params: dict[str, Any], ref: Ref, tol: str
) -> None:
    """Every bar of the whole Bybit 5m file and of seven years of Binance 1h bars."""
    check_case(name, params, ref, tol, load_csv(REAL_5M, 300_000, 1, 3))
    check_case(name, params, ref, tol, load_csv(REAL_1H, 3_600_000, 2, 6))
