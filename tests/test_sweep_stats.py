"""The deflated Sharpe ratio and PBO, against published numbers and independent code."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest

from replay.sweep import stats


def test_deflated_sharpe_reproduces_the_papers_worked_example():
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example:
    # annualised SR 2.5 over 5 years of daily returns (T = 1250, 250 days a year), N = 100
    # trials whose annualised SRs have variance 0.5, skewness -3, kurtosis 10:
    # SR0 = 0.1132 per day (1.79 a year) and DSR = 0.9004.
    sr, variance = 2.5 / math.sqrt(250), 0.5 / 250
    assert stats.expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    assert stats.deflated_sharpe(sr, 1250, -3.0, 10.0, 100, variance) == pytest.approx(
        0.9004, abs=5e-5
    )


def test_expected_max_sharpe_matches_simulated_maxima():
    """SR0 is E[max of N unskilled Sharpe ratios]: check it by simulation, not by formula."""
    rng = np.random.default_rng(0)
    for n, sd in ((10, 1.0), (100, 0.05), (1000, 0.2)):
        simulated = float(rng.normal(0.0, sd, size=(4000, n)).max(axis=1).mean())
        assert stats.expected_max_sharpe(n, sd * sd) == pytest.approx(simulated, rel=0.02)


def test_moments_match_the_statistics_module():
    rng = np.random.default_rng(1)
    r = list(rng.standard_t(5, size=500) * 0.01 + 0.001)
    sr, skew, kurt = stats.moments(r)
    assert sr == pytest.approx(statistics.fmean(r) / statistics.stdev(r))
    mu, n = statistics.fmean(r), len(r)
    m2 = sum((x - mu) ** 2 for x in r) / n
    assert skew == pytest.approx(sum((x - mu) ** 3 for x in r) / n / m2**1.5)
    assert kurt == pytest.approx(sum((x - mu) ** 4 for x in r) / n / m2**2)


def _pbo_naive(m: np.ndarray, blocks: int) -> float:
    """CSCV written out as in the paper: split, concatenate, rank, one split at a time."""
    t, n = m.shape
    size = t // blocks
    parts = [m[i * size : (i + 1) * size] for i in range(blocks)]
    below = 0
    splits = 0
    for train_ids in itertools.combinations(range(blocks), blocks // 2):
        train = np.vstack([parts[i] for i in train_ids])
        test = np.vstack([parts[i] for i in range(blocks) if i not in train_ids])

        def sharpe(x: np.ndarray, j: int) -> float:
            col = [float(v) for v in x[:, j]]
            sd = statistics.stdev(col)
            return statistics.fmean(col) / sd if sd > 0 else 0.0

        is_perf = [sharpe(train, j) for j in range(n)]
        star = is_perf.index(max(is_perf))
        oos = [sharpe(test, j) for j in range(n)]
        rank = 1 + sum(1 for j in range(n) if oos[j] < oos[star])
        omega = rank / (n + 1)
        below += math.log(omega / (1 - omega)) <= 0
        splits += 1
    return below / splits


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pbo_agrees_with_the_naive_cscv(seed):
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, 0.01, size=(96, 6)) + rng.normal(0, 0.002, size=6)
    got = stats.pbo(m, blocks=8)
    assert got.splits == math.comb(8, 4)
    assert got.pbo == pytest.approx(_pbo_naive(m, 8))


def test_pbo_is_zero_for_a_dominant_trial_and_about_half_for_noise():
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 0.01, size=(320, 10))
    skilled = noise.copy()
    skilled[:, 4] += 0.02  # trial 4 is better in every block
    assert stats.pbo(skilled).pbo == 0.0
    assert stats.pbo(rng.normal(0.0, 0.01, size=(1600, 40))).pbo == pytest.approx(0.5, abs=0.15)
    assert stats.pbo(noise).splits == math.comb(16, 8)
