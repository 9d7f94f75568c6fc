"""A sweep's records folded into what ``sweep``, ``sweep show`` and ``sweeps`` print."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from replay.cards.params import format_params
from replay.sweep import stats
from replay.sweep.events import Record, SweepFinished, SweepStarted, TrialDone
from replay.sweep.runner import choose_best, key, objective_value


class FoldRow(msgspec.Struct):
    """One walk-forward fold: the params chosen in sample and how they did out of it."""

    fold: int
    train: list[int]  # candle rows [first, last)
    test: list[int]
    params: dict[str, Any]
    in_sample: float | None  # the objective on the train window
    out_of_sample: float | None  # on the test window
    oos_return: float | None
    oos_trades: int | None


class SweepView(msgspec.Struct):
    started: SweepStarted
    trials: list[TrialDone]  # by fold, test last, then number
    finished: bool
    best: TrialDone | None
    dsr: float
    pbo: float
    folds: list[FoldRow] = []
    oos_equity: list[float] = []  # the stitched test windows' equity, from 1.0

    @property
    def planned(self) -> int:
        k = self.started.walk_forward
        return self.started.trials * k + k if k else self.started.trials

    @property
    def qualified(self) -> list[TrialDone]:
        return [
            t for t in self.trials if not t.fold and objective_value(self.started, t) is not None
        ]

    def ranked(self) -> list[TrialDone]:
        """Qualifying trials, best first (ties: lowest number first)."""
        return sorted(
            self.qualified, key=lambda t: (-(objective_value(self.started, t) or 0.0), t.number)
        )

    def as_json(self) -> dict[str, Any]:
        s = self.started
        return {
            "sweep": s.sweep_id,
            "card": s.card_path,
            "data": s.data_path,
            "data_hash": s.data_hash,
            "search": s.search,
            "seed": s.seed,
            "objective": s.objective,
            "min_trades": s.min_trades,
            "space": s.space,
            "where": s.where,
            "trials_planned": self.planned,
            "trials_done": len(self.trials),
            "finished": self.finished,
            "best": msgspec.to_builtins(_slim(self.best)) if self.best else None,
            "dsr": _num(self.dsr),
            "pbo": _num(self.pbo),
            "trials": [msgspec.to_builtins(_slim(t)) for t in self.trials],
            "walk_forward": [msgspec.to_builtins(f) for f in self.folds],
            "oos_equity": self.oos_equity,
        }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _slim(t: TrialDone) -> TrialDone:
    return msgspec.structs.replace(t, returns=[])


def fold(records: list[Record]) -> SweepView:
    started = records[0]
    assert isinstance(started, SweepStarted)
    by_key = {key(r): r for r in records if isinstance(r, TrialDone)}
    trials = [by_key[k] for k in sorted(by_key)]
    finished = isinstance(records[-1], SweepFinished)
    whole = [t for t in trials if not t.fold]
    best = choose_best(started, whole)
    dsr, pbo = overfitting(started, whole, best)
    rows, curve = walk_forward(started, trials)
    return SweepView(started, trials, finished, best, dsr, pbo, rows, curve)


def walk_forward(
    started: SweepStarted, trials: list[TrialDone]
) -> tuple[list[FoldRow], list[float]]:
    rows: list[FoldRow] = []
    equity = [1.0]
    for k in range(1, started.walk_forward + 1):
        chosen = choose_best(started, [t for t in trials if t.fold == k and not t.test])
        test = next((t for t in trials if t.fold == k and t.test), None)
        if chosen is None:
            continue
        rows.append(
            FoldRow(
                fold=k,
                train=chosen.rows[:2],
                test=test.rows[:2] if test else [],
                params=dict(chosen.params),
                in_sample=objective_value(started, chosen),
                out_of_sample=_metric(started, test),
                oos_return=test.metrics["total_return"] if test else None,
                oos_trades=int(test.metrics["trades"]) if test else None,
            )
        )
        if test is not None:
            for r in test.returns:
                equity.append(equity[-1] * (1.0 + r))
    return rows, equity if rows else []


def _metric(started: SweepStarted, t: TrialDone | None) -> float | None:
    """The objective's value on a test run (min-trades does not apply out of sample)."""
    if t is None or not t.metrics:
        return None
    value = t.metrics[started.objective.removeprefix("-")]
    return -value if started.objective.startswith("-") else value


def overfitting(
    started: SweepStarted, trials: list[TrialDone], best: TrialDone | None
) -> tuple[float, float]:
    """DSR of the best trial (N = qualifying trials) and PBO over their returns."""
    ok = [t for t in trials if objective_value(started, t) is not None and t.returns]
    if best is None or len(ok) < 2 or len({len(t.returns) for t in ok}) != 1:
        return math.nan, math.nan
    srs = [stats.moments(t.returns)[0] for t in ok]
    sr, skew, kurt = stats.moments(best.returns)
    dsr = stats.deflated_sharpe(
        sr, len(best.returns), skew, kurt, len(ok), float(np.var(srs, ddof=1))
    )
    matrix = np.array([t.returns for t in ok]).T
    return dsr, stats.pbo(matrix).pbo


def params_text(t: TrialDone) -> str:
    return format_params(t.params)
