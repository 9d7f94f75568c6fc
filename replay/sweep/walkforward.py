"""Walk-forward folds: optimize on a train window, run the choice on the next window.

The candles are cut by time into ``K + 1`` equal parts. Fold ``i`` (1..K) trains on parts
``0..i-1`` (anchored, the default) or on part ``i-1`` alone (``--rolling``), and tests on
part ``i``; the test run first feeds part ``i-1`` as backfill, so its features are warm at
the first test candle, with no trade before it (the engine never acts on backfill).
"""

from __future__ import annotations

import msgspec

from replay.errors import InputError

MIN_ROWS = 100  # candles per part, at least


class Fold(msgspec.Struct, frozen=True):
    number: int
    train: tuple[int, int]  # candle rows [first, last)
    test: tuple[int, int]
    warm: int  # the test run's first (backfill) row


def folds(rows: int, k: int, rolling: bool) -> list[Fold]:
    if k < 1:
        return []
    part = rows // (k + 1)
    if part < MIN_ROWS:
        raise InputError(
            f"--walk-forward {k}: {rows:,} candles make parts of {part}; "
            f"at least {MIN_ROWS} each (use fewer folds or more data)"
        )
    bounds = [i * part for i in range(k + 1)] + [rows]
    return [
        Fold(
            number=i,
            train=(bounds[i - 1] if rolling else 0, bounds[i]),
            test=(bounds[i], bounds[i + 1]),
            warm=bounds[i - 1],
        )
        for i in range(1, k + 1)
    ]
