"""Crossover helpers: exact comparison of two SMAs, and cross detection.

A cross is +1 (a crosses above b: a was <= b and is now > b), -1 (a was >= b and is
now < b) or 0. For SMAs use ``sma_compare`` each candle and ``cross_from_compare``:
the comparison is of exact integers, so equality is a real tie.
"""

from __future__ import annotations

from engine.indicators.averages import SMA


def sma_compare(a: SMA, b: SMA) -> int:
    """-1, 0 or 1 as a's mean is below, equal to or above b's, compared exactly.

    a.total / a.divisor vs b.total / b.divisor, cross-multiplied in integers
    (divisor = period * source scale, so SMAs on different sources compare too).
    """
    x = a.total * b.divisor
    y = b.total * a.divisor
    return (x > y) - (x < y)


def cross_from_compare(prev_cmp: int, cmp: int) -> int:
    """+1/-1/0 from the previous and current sign of (a - b)."""
    if cmp > 0 and prev_cmp <= 0:
        return 1
    if cmp < 0 and prev_cmp >= 0:
        return -1
    return 0


def cross_state(prev_a: float, prev_b: float, a: float, b: float) -> int:
    """+1 if a crossed above b between the previous and the current bar, -1 if below.

    Any NaN gives 0: a series that is not warm never crosses.
    """
    if a > b and prev_a <= prev_b:
        return 1
    if a < b and prev_a >= prev_b:
        return -1
    return 0
