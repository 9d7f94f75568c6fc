"""Benchmark ``replay sweep`` against backtesting.py's ``Backtest.optimize``, side by side.

The grid of issue 15: the long-only SMA cross (0.1 BTC, 0.055 % per side, next-open
fills; ``tools/bench/sma_sweep.yaml``), fast 5..50 step 5 x slow 20..200 step 20 with
fast < slow (90 combinations), on N one-minute GBM candles (seeded), best by total
return in both. backtesting.py runs in its own venv (``.venv-peers``, made on first use
by ``tools.peers_venv``) with its own multiprocessing; replay with ``--workers``
processes. JSON lines on stdout:

    {"bench": "sweep_replay", "combinations": 90, "seconds": ..., "cpu_per_trial_s": ...,
     "best": {...}, ...}
    {"bench": "sweep_backtesting_py", "seconds": ..., "best": {...}, ...}
    {"bench": "sweep_speedup", "ratio": ..., "same_best": true}
    {"bench": "sweep_worker_memory", "candles": 1000000, "peak_rss_mb": ...}

The last line is one pool worker (a fresh process, as the pool starts them) mapping
``--memory-candles`` candles and running one trial over all of them: its peak RSS.

Usage: python tools/bench_sweep.py [--candles 100000] [--workers 2] [--no-peer]
                                   [--memory-candles 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.historical import CandleSeries, write_parquet  # noqa: E402
from engine.instrument import BTCUSDT, Instrument  # noqa: E402
from replay.sweep.runner import SweepConfig, run  # noqa: E402
from replay.sweep.view import fold  # noqa: E402
from tools import peers_venv  # noqa: E402

CARD = ROOT / "tools" / "bench" / "sma_sweep.yaml"
PEER = ROOT / "tools" / "bench" / "peer_optimize.py"
START_MS = 1_700_000_000_000 // 60_000 * 60_000


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def gbm(n: int, seed: int = 15, sigma: float = 0.0008) -> CandleSeries:
    """Seeded geometric Brownian motion closes, open = previous close, small wicks."""
    inst = Instrument(BTCUSDT)
    rng = np.random.default_rng(seed)
    close = 42_000.0 * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    open_ = np.concatenate([[42_000.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, sigma / 2, (2, n)))
    tick = float(inst.tick)
    o, c = np.round(open_ / tick), np.round(close / tick)
    h = np.maximum(np.round(np.maximum(open_, close) * (1 + wick[0]) / tick), np.maximum(o, c))
    lo = np.minimum(np.round(np.minimum(open_, close) * (1 - wick[1]) / tick), np.minimum(o, c))
    lots = np.full(n, 1000, dtype=np.int64)  # 1 BTC a minute
    open_ms = START_MS + 60_000 * np.arange(n, dtype=np.int64)
    mean = ((o + h + lo + c) / 4).astype(np.int64)
    return CandleSeries(
        inst,
        "1m",
        open_ms=open_ms,
        close_ms=open_ms + 60_000,
        open=o.astype(np.int64),
        high=h.astype(np.int64),
        low=lo.astype(np.int64),
        close=c.astype(np.int64),
        volume=lots,
        turnover=lots * mean * inst.notional_unit,
        source="gbm",
    )


def write_peer_csv(series: CandleSeries, path: Path) -> None:
    """The candles for backtesting.py, prices per 0.1 BTC (its units are whole)."""
    tick = float(series.instrument.tick) * 0.1
    with path.open("w") as f:
        f.write("Time,Open,High,Low,Close,Volume\n")
        stamps = np.datetime_as_string(series.open_ms.astype("datetime64[ms]"))
        for t, o, h, lo, c in zip(
            stamps,
            series.open.tolist(),
            series.high.tolist(),
            series.low.tolist(),
            series.close.tolist(),
        ):
            f.write(f"{t},{o * tick:.4f},{h * tick:.4f},{lo * tick:.4f},{c * tick:.4f},10\n")


_WORKER_PROBE = """
import os, resource, sys
from replay.sweep import executors
from replay.sweep.trial import TrialContext, TrialTask
ctx = TrialContext(open(sys.argv[1]).read(), sys.argv[1], 10**12, sys.argv[2])
executors._pool_init(ctx, sys.argv[2] + "/candles", "1m", os.getppid())
executors._pool_run(TrialTask(1, {"fast": 10, "slow": 100}, "probe"))
lines = open("/proc/self/smaps_rollup").read().splitlines()[1:]
anonymous = int(dict(x.split(":", 1) for x in lines)["Anonymous"].split()[0]) / 1024
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, anonymous)
"""


def worker_memory(n: int, tmp: Path) -> None:
    from replay.sweep.executors import write_columns

    scratch = tmp / "memory"
    write_columns(gbm(n), scratch / "candles")
    out = subprocess.run(
        [sys.executable, "-c", _WORKER_PROBE, str(CARD), str(scratch)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    peak, anonymous = (float(x) for x in out.stdout.split())
    # RSS counts file-backed pages too: the memory-mapped candles (shared by all workers);
    # anonymous is the worker's own heap after the trial.
    emit(
        bench="sweep_worker_memory",
        candles=n,
        peak_rss_mb=round(peak, 1),
        anonymous_after_trial_mb=round(anonymous, 1),
    )


class TreeCPU:
    """CPU seconds (user + system) of this process and its descendants while running:
    the pool's workers are the forkserver's children, which ``RUSAGE_CHILDREN`` never
    sees, so ``/proc`` is polled every ``every`` s (a worker's last moments may be missed;
    it is idle then). A poll reads the stat of the tree and of new pids only (reading
    every process's was about 2 ms of this process's CPU a poll, counted in the result)."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self.seen: dict[int, int] = {}
        self._pids: set[int] = set()  # every pid looked at
        self._ppid: dict[int, int] = {}
        self._tree_pids: set[int] = {os.getpid()}
        self.base = self._tree()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @staticmethod
    def _stat(pid: int) -> tuple[int, int] | None:
        """(ppid, user + system ticks) of ``pid``, None if it is gone."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
        except OSError:
            return None
        fields = text[text.rindex(")") + 2 :].split()
        return int(fields[1]), int(fields[11]) + int(fields[12])

    def _tree(self) -> dict[int, int]:
        now = {int(p) for p in os.listdir("/proc") if p.isdigit()}
        for pid in now - self._pids:
            got = self._stat(pid)
            if got is not None:
                self._ppid[pid] = got[0]
        self._pids |= now
        grew = True
        while grew:  # new descendants, down any number of generations
            kids = {p for p, pp in self._ppid.items() if pp in self._tree_pids}
            grew = not kids <= self._tree_pids
            self._tree_pids |= kids
        out: dict[int, int] = {}
        for pid in self._tree_pids & now:
            got = self._stat(pid)
            if got is not None:
                out[pid] = got[1]
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.seen.update(self._tree())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.seen.update(self._tree())
        ticks = sum(t - self.base.get(pid, 0) for pid, t in self.seen.items())
        return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candles", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-peer", action="store_true", help="Skip backtesting.py.")
    parser.add_argument("--memory-candles", type=int, default=1_000_000, help="0: skip.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.memory_candles:
            worker_memory(args.memory_candles, Path(tmp))
        series = gbm(args.candles)
        data = Path(tmp) / "gbm.parquet"
        write_parquet(series, data)
        cfg = SweepConfig(
            card=CARD,
            data=data,
            store=Path(tmp) / "runs",
            where=["fast<slow"],
            objective="total_return",
            workers=args.workers,
        )
        t0 = time.perf_counter()
        cpu = TreeCPU()
        view = fold(run(cfg))
        seconds = time.perf_counter() - t0
        cpu_s = cpu.stop()
        best = view.best
        assert best is not None
        emit(
            bench="sweep_replay",
            combinations=len(view.trials),
            candles=args.candles,
            workers=args.workers,
            seconds=round(seconds, 3),
            per_trial_s=round(seconds / len(view.trials), 3),
            cpu_s=round(cpu_s, 2),  # driver and workers, user + system
            cpu_per_trial_s=round(cpu_s / len(view.trials), 3),
            load_1m=round(os.getloadavg()[0], 2),
            best=best.params,
            total_return=best.metrics["total_return"],
            trades=int(best.metrics["trades"]),
            driver_peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        )
        if args.no_peer:
            return
        csv = Path(tmp) / "gbm.csv"
        write_peer_csv(series, csv)
        python = peers_venv.ensure({"backtesting": "backtesting", "pandas": "pandas"})
        cpu = TreeCPU()
        out = subprocess.run(
            [str(python), str(PEER), str(csv)], capture_output=True, text=True, check=True
        )
        peer_cpu = cpu.stop()  # the peer's whole process, CSV read included
        peer = json.loads(out.stdout.strip().splitlines()[-1])
        emit(
            bench="sweep_backtesting_py",
            candles=args.candles,
            **peer,
            process_cpu_s=round(peer_cpu, 2),
            load_1m=round(os.getloadavg()[0], 2),
        )
        emit(
            bench="sweep_speedup",
            ratio=round(peer["seconds"] / seconds, 2),
            cpu_ratio=round(peer_cpu / cpu_s, 2),
            same_best=peer["best"] == best.params,
        )


if __name__ == "__main__":
    main()
