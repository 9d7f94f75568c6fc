"""Vectorised ``log`` and ``cos(2*pi*u)`` built only from +, -, *, / and frexp.

numpy's own transcendental ufuncs may dispatch to CPU-specific SIMD code whose
last bits differ between machines; IEEE-754 basic operations (and ``np.frexp``,
``np.sqrt``) are correctly rounded everywhere. The generator needs the same bits on
every machine, not the last ulp of accuracy: these agree with libm to ~1e-15.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
_LN2: Final = 0.6931471805599453
_SQRT_HALF: Final = 0.7071067811865476
_HALF_PI: Final = 1.5707963267948966
# Horner coefficients, highest power first: log(m) = 2s * sum(s^2k / (2k+1)), |s| < 0.172.
_LOG_TERMS: Final = tuple(1.0 / (2 * k + 1) for k in range(12, -1, -1))
# Taylor series on [0, pi/2): cos x = sum((-1)^k x^2k / (2k)!), sin x / x likewise with (2k+1)!.
# Exact integer factorials, one correctly rounded division each.
_COS_TERMS: Final = tuple((-1) ** k / math.factorial(2 * k) for k in range(12, -1, -1))
_SIN_TERMS: Final = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(12, -1, -1))


def _horner(x: F64, coefficients: tuple[float, ...]) -> F64:
    acc = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        acc = acc * x + c
    return acc


def log(x: F64) -> F64:
    """Natural log of positive finite values."""
    m, e = np.frexp(x)  # x = m * 2**e, 0.5 <= m < 1 (exact)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)  # now sqrt(1/2) <= m < sqrt(2)
    e = e - low
    s = (m - 1.0) / (m + 1.0)
    return e * _LN2 + 2.0 * s * _horner(s * s, _LOG_TERMS)


def cos_turn(u: F64) -> F64:
    """cos(2*pi*u) for u in [0, 1): quadrant from 4u (exact), then a series on [0, pi/2)."""
    w = u * 4.0
    q = np.floor(w)
    theta = (w - q) * _HALF_PI
    t2 = theta * theta
    c = _horner(t2, _COS_TERMS)
    s = theta * _horner(t2, _SIN_TERMS)
    quadrant = q.astype(np.int64) & 3
    return np.choose(quadrant, (c, -s, -c, s))
