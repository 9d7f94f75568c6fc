"""Overfitting statistics of a sweep: the deflated Sharpe ratio and PBO by CSCV.

* ``deflated_sharpe`` (Bailey & López de Prado, "The Deflated Sharpe Ratio", 2014):
  the probability that the best trial's true Sharpe ratio is above the one expected
  as the maximum of ``n`` unskilled trials,
  ``SR0 = sqrt(V) ((1-g) Z^-1(1-1/N) + g Z^-1(1-1/(N e)))`` (g: Euler-Mascheroni),
  ``DSR = Z((SR - SR0) sqrt(T-1) / sqrt(1 - skew SR + (kurt-1)/4 SR^2))``;
  Sharpe ratios per observation (not annualised), kurtosis not in excess.
* ``pbo`` (Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest
  Overfitting", 2017): the returns matrix (observations x trials) cut into ``S``
  blocks; for every half of the blocks as training set, the trial best in training
  is ranked out of sample; PBO is the share of splits where it ranks at or below the
  median (logit <= 0).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Final

import msgspec
import numpy as np

EULER: Final = 0.5772156649015329
_Z: Final = NormalDist()


def moments(returns: Sequence[float]) -> tuple[float, float, float]:
    """Sharpe ratio (mean / sample stdev), skewness and (non-excess) kurtosis."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0, 0.0, 3.0
    sd = float(r.std(ddof=1))
    if sd == 0:
        return 0.0, 0.0, 3.0
    mu = float(r.mean())
    m2 = float(((r - mu) ** 2).mean())
    skew = float(((r - mu) ** 3).mean()) / m2**1.5
    kurt = float(((r - mu) ** 4).mean()) / m2**2
    return mu / sd, skew, kurt


def expected_max_sharpe(n: int, variance: float) -> float:
    """SR0: the expected maximum Sharpe ratio of ``n`` trials of true Sharpe 0."""
    if n < 2 or variance <= 0:
        return 0.0
    a = _Z.inv_cdf(1 - 1 / n)
    b = _Z.inv_cdf(1 - 1 / (n * math.e))
    return math.sqrt(variance) * ((1 - EULER) * a + EULER * b)


def deflated_sharpe(sr: float, t: int, skew: float, kurt: float, n: int, variance: float) -> float:
    sr0 = expected_max_sharpe(n, variance)
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr * sr
    if t < 2 or denom <= 0:
        return float("nan")
    return _Z.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(denom))


class PBO(msgspec.Struct, frozen=True):
    pbo: float
    splits: int
    logits: list[float]


def pbo(matrix: np.ndarray, blocks: int = 16) -> PBO:
    """PBO of ``matrix`` (observations x trials), Sharpe ratio as the performance."""
    m = np.asarray(matrix, dtype=np.float64)
    t, n = m.shape
    if n < 2 or blocks < 2 or blocks % 2 or t < blocks:
        return PBO(float("nan"), 0, [])
    size = t // blocks
    m = m[: size * blocks].reshape(blocks, size, n)
    sums, squares = m.sum(axis=1), (m * m).sum(axis=1)  # blocks x trials
    chosen_blocks = np.array(list(itertools.combinations(range(blocks), blocks // 2)))
    combos = np.zeros((len(chosen_blocks), blocks))  # 1.0 where a split trains on a block
    combos[np.arange(len(chosen_blocks))[:, None], chosen_blocks] = 1.0

    def sharpe(mask: np.ndarray) -> np.ndarray:
        k = size * blocks // 2
        s, q = mask @ sums, mask @ squares
        mean = s / k
        var = (q - k * mean * mean) / (k - 1)
        sd = np.sqrt(np.maximum(var, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sd > 0, mean / sd, 0.0)

    train, test = sharpe(combos), sharpe(1.0 - combos)
    best = np.argmax(train, axis=1)
    chosen = test[np.arange(len(best)), best]
    rank = (test < chosen[:, None]).sum(axis=1) + 1  # 1 = worst out of sample
    omega = rank / (n + 1)
    logits = np.log(omega / (1 - omega))
    return PBO(float((logits <= 0).mean()), len(combos), logits.tolist())


def dsr_reading(value: float) -> str:
    if math.isnan(value):
        return "DSR: not enough data to say."
    if value >= 0.95:
        return f"DSR {value:.2f}: the best Sharpe is very likely above what luck alone gives."
    if value >= 0.5:
        return f"DSR {value:.2f}: the best Sharpe may be luck; treat it with caution."
    return f"DSR {value:.2f}: the best Sharpe is what the number of trials alone would give."


def pbo_reading(value: float) -> str:
    if math.isnan(value):
        return "PBO: not enough trials or data to say."
    if value <= 0.2:
        return f"PBO {value:.0%}: the in-sample best usually stays above median out of sample."
    if value < 0.5:
        return f"PBO {value:.0%}: the in-sample best often falls below median out of sample."
    return f"PBO {value:.0%}: the in-sample choice is likely overfit (no better than chance)."
