"""A sweep from start to end: start or resume its stream, run what is missing, choose.

The sweep's id is the card's name and a digest of its ``SweepStarted`` (card text and
path, data hash, space, search, seed, objective), so the same command finds the same
stream: trials already recorded are not run again, and the search (Optuna's included:
its asks depend only on the tells, which are replayed in trial order) proposes the
same trials, so a sweep killed at any point ends with the result it would have had.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import shutil
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN
from pathlib import Path
from typing import Any, Final

import msgspec

from engine.instrument import InstrumentError, money_from_str
from eventstore import EventStore, StreamNotFound
from replay import __version__
from replay.backtest import BacktestRequest, load_series
from replay.cards import load_card
from replay.errors import InputError
from replay.instruments import resolve as resolve_instrument
from replay.session import SessionInterrupted
from replay.session_ids import check_session_id, safe_stem
from replay.sweep import executors
from replay.sweep.events import (
    KIND,
    Record,
    SweepFinished,
    SweepStarted,
    TrialDone,
    decode_all,
    encode,
)
from replay.sweep.progress import Progress
from replay.sweep.space import Space, build
from replay.sweep.trial import METRIC_NAMES, TrialContext, TrialTask, session_id
from replay.sweep.walkforward import Fold, folds

SEARCHES: Final = ("grid", "random", "optuna")


class SweepConfig(msgspec.Struct):
    card: Path
    data: Path
    store: Path = Path("runs")
    grids: list[str] = []
    where: list[str] = []
    search: str = "grid"
    trials: int = 0  # random / optuna: how many
    batch: int = 8  # optuna: trials asked before they are told
    seed: int = 0
    objective: str = "sharpe"
    min_trades: int = 0
    workers: int = 1
    ray: str | None = None
    keep_logs: str = "none"  # none | best | all
    name: str | None = None
    balance: str = "10000"
    stamps: str = "start"
    gaps: str = "fail"
    walk_forward: int = 0  # folds (0: one search over all the data)
    rolling: bool = False  # walk-forward train windows roll instead of growing


def check_objective(objective: str) -> str:
    name = objective.removeprefix("-")
    if name not in METRIC_NAMES:
        close = difflib.get_close_matches(name, METRIC_NAMES, n=1, cutoff=0.5)
        hint = f" -- did you mean {close[0]!r}?" if close else ""
        raise InputError(
            f"--objective {objective!r}: not a summary metric{hint}; one of "
            + ", ".join(METRIC_NAMES)
            + " (a leading '-' minimizes, e.g. -max_drawdown)"
        )
    return objective


def objective_value(started: SweepStarted, trial: TrialDone) -> float | None:
    """The value the search maximizes, or None when the trial does not qualify."""
    if trial.skipped or not trial.metrics:
        return None
    if trial.metrics.get("trades", 0.0) < started.min_trades:
        return None
    name = started.objective.removeprefix("-")
    value = trial.metrics[name]
    if math.isnan(value):
        return None
    return -value if started.objective.startswith("-") else value


def choose_best(started: SweepStarted, trials: Iterable[TrialDone]) -> TrialDone | None:
    """The qualifying trial with the highest objective; ties go to the lowest number."""
    best: tuple[float, int, TrialDone] | None = None
    for t in trials:
        value = objective_value(started, t)
        if value is None:
            continue
        key = (value, -t.number)
        if best is None or key > best[:2]:
            best = (value, -t.number, t)
    return None if best is None else best[2]


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        raise InputError(f"--data {path}: cannot read it: {exc.strerror}") from None
    return h.hexdigest()


def _plan(cfg: SweepConfig, space: Space) -> tuple[list[dict[str, Any]], int]:
    if cfg.search == "grid":
        grid = space.grid()
        return grid, len(grid)
    if cfg.trials < 1:
        raise InputError(f"--{cfg.search} needs a number of trials of at least 1")
    if cfg.search == "random":
        picks = space.sample(cfg.trials, cfg.seed)
        return picks, len(picks)
    return [], cfg.trials


class Prepared(msgspec.Struct):
    started: SweepStarted
    space: Space
    plan: list[dict[str, Any]]
    balance: int
    series: Any
    folds: list[Fold]

    @property
    def total(self) -> int:
        """Trials the sweep runs in all: each fold's search and its test run."""
        k = len(self.folds)
        return self.started.trials * k + k if k else self.started.trials


def prepare(cfg: SweepConfig) -> Prepared:
    """Everything checked before anything runs: card, space, objective, data."""
    if cfg.search not in SEARCHES:
        raise InputError(f"search {cfg.search!r}: one of {', '.join(SEARCHES)}")
    check_objective(cfg.objective)
    if cfg.keep_logs not in ("none", "best", "all"):
        raise InputError(f"--keep-logs {cfg.keep_logs!r}: one of none, best, all")
    if cfg.batch < 1:
        raise InputError(f"--batch {cfg.batch}: expected at least 1")
    card = load_card(cfg.card)
    space = build(card.param_specs, cfg.grids, cfg.where)
    plan, total = _plan(cfg, space)
    try:
        balance = money_from_str(cfg.balance, ROUND_HALF_EVEN)
    except InstrumentError:
        raise InputError(f"--balance {cfg.balance!r} is not a number") from None
    data_hash = file_hash(cfg.data)
    instrument = resolve_instrument(card.symbol, card.instrument, None)
    req = BacktestRequest(card=cfg.card, data=cfg.data, stamps=cfg.stamps, gaps=cfg.gaps)
    series = load_series(req, card, instrument, [])
    fold_rows = folds(len(series), cfg.walk_forward, cfg.rolling)
    started = SweepStarted(
        sweep_id="",
        card_path=card.source,
        card_text=card.text,
        card_hash=card.hash,
        data_path=str(cfg.data),
        data_hash=data_hash,
        candles=len(series),
        space=space.values,
        where=space.where,
        search=cfg.search,
        trials=total,
        batch=cfg.batch if cfg.search == "optuna" else 0,
        seed=cfg.seed if cfg.search != "grid" else 0,
        objective=cfg.objective,
        min_trades=cfg.min_trades,
        balance=cfg.balance,
        version=__version__,
        stamps=cfg.stamps,
        gaps=cfg.gaps,
        walk_forward=cfg.walk_forward,
        rolling=cfg.rolling and cfg.walk_forward > 0,
    )
    digest = hashlib.blake2b(encode(started), digest_size=4).hexdigest()
    name = getattr(card.spec, "name", "") or Path(card.source).stem
    sweep_id = cfg.name or f"{safe_stem(str(name), 80)}-sweep-{digest}"
    check_session_id(sweep_id, "--name")
    started = msgspec.structs.replace(started, sweep_id=sweep_id)
    return Prepared(started, space, plan, balance, series, fold_rows)


def read(store: EventStore, sweep_id: str) -> list[Record]:
    """A sweep stream's records; StreamNotFound when ``sweep_id`` is not a sweep."""
    if sweep_id not in store or store.stream(sweep_id).kind != KIND:
        raise StreamNotFound(sweep_id, str(store.path))
    return decode_all(store.stream(sweep_id).read())


def run(cfg: SweepConfig, progress: Progress | None = None) -> list[Record]:
    """Run (or resume, or just read back) the sweep ``cfg`` describes; its records."""
    prep = prepare(cfg)
    started = prep.started
    sweep_id = started.sweep_id
    progress = progress or Progress()
    cfg.store.mkdir(parents=True, exist_ok=True)
    scratch = cfg.store / "sweeps" / sweep_id
    with EventStore(cfg.store) as store:
        if sweep_id in store:
            records = read(store, sweep_id)
            if not records or records[0] != started:
                raise InputError(
                    f"sweep {sweep_id} exists with other inputs; pick another --name "
                    f"or delete it (replay sweeps rm {sweep_id})"
                )
            if isinstance(records[-1], SweepFinished):
                return records
            stream = store.stream(sweep_id)
        else:
            stream = store.create_stream(
                sweep_id, kind=KIND, meta={"status": "running", "card": started.card_path}
            )
            records = []
        done = {key(r): r for r in records if isinstance(r, TrialDone)}
        ctx = TrialContext(
            card_text=started.card_text,
            card_path=started.card_path,
            balance=prep.balance,
            scratch=str(scratch),
            keep_store=str(cfg.store) if cfg.keep_logs == "all" and not cfg.ray else "",
            ship_to=str(cfg.store) if cfg.keep_logs == "all" and cfg.ray else "",
        )
        executor: executors.Executor | None = None

        def pool() -> executors.Executor:
            nonlocal executor
            if executor is None:
                executor = executors.make(ctx, prep.series, cfg.workers, cfg.ray)
            return executor

        with stream.writer(durable=True) as writer:
            if not records:
                writer.append(encode(started))

            def record(trial: TrialDone) -> None:
                writer.append(encode(trial))
                done[key(trial)] = trial
                progress.advance(trial)

            search = _Search(started, prep.space, prep.plan, done, record, pool)
            progress.start(prep.total, len(done))
            try:
                if not prep.folds:
                    search.run(_Rows(0))
                for fold in prep.folds:
                    search.run(_Rows(fold.number, fold.train[0], fold.train[1]))
                    chosen = choose_best(started, search.of_fold(fold.number))
                    if chosen is None or (fold.number, 0, True) in done:
                        continue
                    test = TrialTask(
                        0,
                        chosen.params,
                        session_id(sweep_id, 0, fold.number, test=True),
                        fold.number,
                        fold.test[0],
                        fold.test[1],
                        fold.warm,
                        test=True,
                    )
                    for trial in pool().run([test]):
                        record(trial)
            except (KeyboardInterrupt, SessionInterrupted):
                stream.set_meta("status", "interrupted")  # run it again to resume
                raise
            finally:
                progress.stop()
                if executor is not None:
                    executor.close()
            best = None if prep.folds else choose_best(started, done.values())
            writer.append(encode(SweepFinished(best.number if best else 0, len(done))))
        stream.set_meta("status", "complete")
        shutil.rmtree(scratch, ignore_errors=True)
        records = read(store, sweep_id)
    if best is not None and cfg.keep_logs == "best":
        rerun(cfg.store, sweep_id, str(best.number))
    return records


def key(t: TrialDone) -> tuple[int, int, bool]:
    return (t.fold, t.number, t.test)


class _Rows(msgspec.Struct, frozen=True):
    fold: int
    first: int = 0
    last: int = 0


class _Search:
    """One search (grid, random or Optuna) run over the rows of one fold (or all)."""

    def __init__(
        self,
        started: SweepStarted,
        space: Space,
        plan: list[dict[str, Any]],
        done: dict[tuple[int, int, bool], TrialDone],
        record: Callable[[TrialDone], None],
        pool: Callable[[], executors.Executor],
    ) -> None:
        self.started, self.space, self.plan = started, space, plan
        self.done, self.record, self.pool = done, record, pool

    def of_fold(self, fold: int) -> list[TrialDone]:
        return [t for t in self.done.values() if t.fold == fold and not t.test]

    def task(self, n: int, params: dict[str, Any], rows: _Rows) -> TrialTask:
        sid = session_id(self.started.sweep_id, n, rows.fold)
        return TrialTask(n, params, sid, rows.fold, rows.first, rows.last)

    def run(self, rows: _Rows) -> None:
        if self.started.search == "optuna":
            self._optuna(rows)
            return
        tasks = [
            self.task(n, params, rows)
            for n, params in enumerate(self.plan, start=1)
            if (rows.fold, n, False) not in self.done
        ]
        if tasks:
            for trial in self.pool().run(tasks):
                self.record(trial)

    def _optuna(self, rows: _Rows) -> None:
        """TPE seeded, in batches of ``batch`` asks, told in trial order."""
        import optuna
        from optuna.distributions import BaseDistribution, CategoricalDistribution
        from optuna.trial import TrialState

        started, space, done = self.started, self.space, self.done
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=started.seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        dists: dict[str, BaseDistribution] = {
            n: CategoricalDistribution(v) for n, v in space.values.items() if len(v) > 1
        }
        fixed = {n: v[0] for n, v in space.values.items()}
        total = started.trials
        number = 0
        while number < total:
            asked = [study.ask(dists) for _ in range(min(started.batch, total - number))]
            tasks = []
            for i, trial in enumerate(asked):
                n = number + i + 1
                params = {name: trial.params.get(name, fixed[name]) for name in space.values}
                recorded = done.get((rows.fold, n, False))
                if recorded is not None:
                    if recorded.params != params:
                        raise InputError(
                            f"sweep {started.sweep_id}: trial {n} was recorded with "
                            f"{recorded.params}, the search now asks {params}; delete the sweep"
                        )
                elif not space.allows(params):
                    sid = session_id(started.sweep_id, n, rows.fold)
                    skipped = "--where " + " and ".join(space.where)
                    self.record(TrialDone(n, params, sid, skipped=skipped, fold=rows.fold))
                else:
                    tasks.append(self.task(n, params, rows))
            if tasks:
                for result in self.pool().run(tasks):
                    self.record(result)
            for i, trial in enumerate(asked):
                value = objective_value(started, done[(rows.fold, number + i + 1, False)])
                if value is None:
                    study.tell(trial, state=TrialState.FAIL)
                else:
                    study.tell(trial, value)
            number += len(asked)


def parse_trial(text: str) -> tuple[int, int, bool]:
    """``17`` (trial 17), ``f2-t0003`` (fold 2's trial 3) or ``f2-test`` (its test run)."""
    m = re.fullmatch(r"(?:f(\d+)-)?(?:t?(\d+)|(test))", text.strip())
    if m is None or (m.group(3) and not m.group(1)):
        raise InputError(f"trial {text!r}: expected a number (17), f2-t0003 or f2-test")
    fold = int(m.group(1) or 0)
    if m.group(3):
        return fold, 0, True
    return fold, int(m.group(2)), False


def rerun(store_dir: Path, sweep_id: str, trial_key: str) -> tuple[TrialDone, str, bool]:
    """Re-materialize a trial of ``sweep_id`` as a full session in ``store_dir``; returns
    the trial, the new session's fingerprint and whether it was already there."""
    from replay.backtest import run_loaded
    from replay.cards import load_card_text
    from replay.report import write_report
    from replay.sweep.trial import TestWindowView

    wanted = parse_trial(trial_key)
    with EventStore(store_dir) as store:
        records = read(store, sweep_id)
        started = records[0]
        assert isinstance(started, SweepStarted)
        trials = {key(r): r for r in records if isinstance(r, TrialDone) and not r.skipped}
        trial = trials.get(wanted)
        if trial is None:
            have = sorted(trials)
            span = f"{have[0][1]}..{have[-1][1]}" if have else "none"
            raise InputError(f"sweep {sweep_id} has no trial {trial_key} that ran; trials: {span}")
        if trial.session_id in store:
            return trial, store.stream(trial.session_id).fingerprint, True
        data = Path(started.data_path)
        if file_hash(data) != started.data_hash:
            raise InputError(
                f"{data}: its content changed since the sweep (sha256 {started.data_hash[:12]}…)"
            )
        card = load_card_text(started.card_text, source=started.card_path, params=trial.params)
        instrument = resolve_instrument(card.symbol, card.instrument, None)
        req = BacktestRequest(
            card=Path(started.card_path), data=data, stamps=started.stamps, gaps=started.gaps
        )
        series = load_series(req, card, instrument, [])
        warm = None
        if trial.rows:
            first, last, warm_row = trial.rows
            if 0 <= warm_row < first:
                warm = series.take(slice(warm_row, first))
            series = series.take(slice(first, last or len(series)))
        balance = money_from_str(started.balance, ROUND_HALF_EVEN)
        meta = {"data": str(data), "sweep": sweep_id}
        result, summary, view = run_loaded(
            card,
            series,
            instrument,
            store,
            session_id=trial.session_id,
            balance=balance,
            meta=meta,
            warm=warm,
            view=TestWindowView() if warm is not None else None,
        )
        info = {
            "card": started.card_path,
            "data": str(data),
            "session_id": trial.session_id,
            "fingerprint": result.fingerprint,
            "params": dict(trial.params),
        }
        write_report(store_dir / "reports" / trial.session_id, view, summary, info)
        return trial, result.fingerprint, False
