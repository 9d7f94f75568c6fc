"""A sweep's records folded into what ``sweep``, ``sweep show`` and ``sweeps`` print."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from replay.cards.params import format_params
from replay.sweep import stats
from replay.sweep.events import Record, SweepFinished, SweepStarted, TrialDone
from replay.sweep.runner import choose_best, objective_value


class SweepView(msgspec.Struct):
    started: SweepStarted
    trials: list[TrialDone]  # by number
    finished: bool
    best: TrialDone | None
    dsr: float
    pbo: float

    @property
    def qualified(self) -> list[TrialDone]:
        return [t for t in self.trials if objective_value(self.started, t) is not None]

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
            "trials_planned": s.trials,
            "trials_done": len(self.trials),
            "finished": self.finished,
            "best": msgspec.to_builtins(_slim(self.best)) if self.best else None,
            "dsr": _num(self.dsr),
            "pbo": _num(self.pbo),
            "trials": [msgspec.to_builtins(_slim(t)) for t in self.trials],
        }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _slim(t: TrialDone) -> TrialDone:
    return msgspec.structs.replace(t, returns=[])


def fold(records: list[Record]) -> SweepView:
    started = records[0]
    assert isinstance(started, SweepStarted)
    by_number = {r.number: r for r in records if isinstance(r, TrialDone)}
    trials = [by_number[n] for n in sorted(by_number)]
    finished = isinstance(records[-1], SweepFinished)
    best = choose_best(started, trials)
    dsr, pbo = overfitting(started, trials, best)
    return SweepView(started, trials, finished, best, dsr, pbo)


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
