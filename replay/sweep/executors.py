"""Where trials run: in this process, a local process pool, or Ray tasks.

Every executor gets the candles once: the pool's workers memory-map the columns the
sweep wrote to ``.npy`` files (read-only, shared pages, nothing pickled per trial);
Ray gets them into its object store once with ``ray.put`` and each task reads them
there (zero-copy numpy). Results come back in completion order; the runner records
them as they come and orders by trial number, so the result does not depend on the
executor or the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from adapters.historical import CandleSeries
from adapters.historical.series import COLUMNS
from eventstore import EventStore
from replay.sweep.events import TrialDone
from replay.sweep.trial import ShippedLog, TrialContext, TrialTask, Worker, keep_shipped


class Executor(Protocol):
    def run(self, tasks: list[TrialTask]) -> Iterator[TrialDone]: ...

    def close(self) -> None: ...


def _series(columns: dict[str, Any], worker_ctx: TrialContext, timeframe: str) -> CandleSeries:
    from replay.cards import load_card_text
    from replay.instruments import resolve as resolve_instrument

    card = load_card_text(worker_ctx.card_text, source=worker_ctx.card_path)
    instrument = resolve_instrument(card.symbol, card.instrument, None)
    return CandleSeries(instrument, timeframe, **columns)


class InProcess:
    """Trials one after another in this process (``--workers 1``)."""

    def __init__(self, ctx: TrialContext, series: CandleSeries) -> None:
        self.worker = Worker(ctx, series)

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialDone]:
        for task in tasks:
            yield self.worker.run(task)

    def close(self) -> None:
        self.worker.close()


# ------------------------------------------------------------------ process pool

_WORKER: Worker | None = None


def write_columns(series: CandleSeries, folder: Path) -> None:
    """The series' columns as ``.npy`` files the pool's workers memory-map."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, col in series.columns().items():
        np.save(folder / f"{name}.npy", col)


def map_columns(folder: Path) -> dict[str, Any]:
    return {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in COLUMNS}


def _pool_init(ctx: TrialContext, folder: str, timeframe: str, driver: int) -> None:
    global _WORKER
    threading.Thread(target=_exit_with, args=(driver,), daemon=True).start()
    _WORKER = Worker(ctx, _series(map_columns(Path(folder)), ctx, timeframe))


def _exit_with(driver: int, every_s: float = 0.5) -> None:
    """A pool worker ends when the sweep that started it is gone (killed with SIGKILL,
    it cannot tell its workers; they would otherwise wait on the pool's queue for ever)."""
    while True:
        time.sleep(every_s)
        try:
            os.kill(driver, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid was reused by another user's process
            os._exit(1)


def _pool_run(task: TrialTask) -> TrialDone:
    assert _WORKER is not None
    return _WORKER.run(task)


class LocalPool:
    """``workers`` processes (forkserver: no LMDB handle crosses a fork). The fork server
    imports this module first, so the workers start with it loaded instead of each one
    importing it again (0.33 s of CPU a worker; the server opens no store)."""

    def __init__(self, ctx: TrialContext, series: CandleSeries, workers: int) -> None:
        folder = Path(ctx.scratch) / "candles"
        write_columns(series, folder)
        forkserver = multiprocessing.get_context("forkserver")
        forkserver.set_forkserver_preload([__name__])
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=forkserver,
            initializer=_pool_init,
            initargs=(ctx, str(folder), series.timeframe, os.getpid()),
        )
        self.workers = workers

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialDone]:
        queue = list(reversed(tasks))
        pending: set[Future[TrialDone]] = set()
        try:
            while queue or pending:
                while queue and len(pending) < 2 * self.workers:
                    pending.add(self.pool.submit(_pool_run, queue.pop()))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: f.result().number):
                    yield fut.result()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------- ray

_RAY_WORKERS: dict[str, Worker] = {}


def _ray_task(ctx: TrialContext, columns: dict[str, Any], timeframe: str, task: TrialTask) -> Any:
    """The trial's result, and with ``ctx.ship_to`` its log (``(TrialDone, ShippedLog)``)."""
    key = f"{os.getpid()}:{ctx.scratch}:{ctx.ship_to}"
    worker = _RAY_WORKERS.get(key)
    if worker is None:
        worker = _RAY_WORKERS[key] = Worker(ctx, _series(columns, ctx, timeframe))
    done = worker.run(task)
    if ctx.ship_to:
        shipped, worker.shipped = worker.shipped, None
        return done, shipped
    return done


def connect_ray(address: str, num_cpus: int) -> Any:
    """``auto``: the running cluster if there is one, else a local instance of
    ``num_cpus``; anything else is a cluster address (``ray://host:10001``, ``host:6379``)."""
    try:
        import ray
    except ImportError:
        from replay.errors import InputError

        raise InputError(
            "--ray needs Ray: pip install -e '.[ray]' (or pip install 'ray[default]')"
        ) from None
    if not ray.is_initialized():
        root = str(Path(__file__).resolve().parents[2])
        env = {
            "env_vars": {
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [root, os.environ.get("PYTHONPATH", "")])
                ),
                # the opt-in compiled build (tools/compiled.py), also on a cluster's workers
                **{k: v for k, v in os.environ.items() if k.startswith("REPLAY_COMPILED")},
            }
        }
        if address == "auto":
            try:
                ray.init(address="auto", runtime_env=env, log_to_driver=False)
            except ConnectionError:
                ray.init(
                    num_cpus=num_cpus, runtime_env=env, log_to_driver=False, include_dashboard=False
                )
        else:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
    return ray


class RayPool:
    """Trials as Ray tasks; the candles are put in the object store once. With
    ``ctx.ship_to`` (``--keep-logs all``) each task sends its trial's log back and the
    driver appends it to that store before it yields the trial (a node's disk is not the
    driver's)."""

    def __init__(self, ctx: TrialContext, series: CandleSeries, address: str, cpus: int) -> None:
        self.ray = connect_ray(address, cpus)
        self.ctx = ctx
        self.store = EventStore(ctx.ship_to) if ctx.ship_to else None
        self.timeframe = series.timeframe
        self.columns = self.ray.put({k: np.asarray(v) for k, v in series.columns().items()})
        self.remote = self.ray.remote(num_cpus=1)(_ray_task)

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialDone]:
        ray = self.ray
        refs = [self.remote.remote(self.ctx, self.columns, self.timeframe, t) for t in tasks]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                got = ray.get(ref)
                if isinstance(got, tuple):
                    trial, log = got
                    assert self.store is not None and isinstance(log, ShippedLog)
                    keep_shipped(self.store, log)
                    got = trial
                yield got

    def close(self) -> None:
        self.columns = None  # the last reference: Ray frees the candles
        if self.store is not None:
            self.store.close()
            self.store = None


def make(
    ctx: TrialContext, series: CandleSeries, workers: int, ray_address: str | None
) -> Executor:
    if ray_address:
        return RayPool(ctx, series, ray_address, workers)
    if workers <= 1:
        return InProcess(ctx, series)
    return LocalPool(ctx, series, workers)
