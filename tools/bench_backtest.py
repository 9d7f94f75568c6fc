"""Benchmark the whole backtest pipeline: data, log append, fold, report; then verify.

Runs the bundled moving-average cross card over N built-in 1-minute candles into a
temporary store, as ``replay run`` does, and prints JSON lines: the end-to-end figure
(what a user waits for) and its phases, so the README can say where time goes:

    {"bench": "backtest_end_to_end", "candles": N, "per_s": ..., "peak_rss_mb": ...}
    {"bench": "backtest_phases", "generate_s": ..., "run_s": ..., "report_s": ...}
    {"bench": "backtest_from_parquet", ...}   # the same candles loaded from a file
    {"bench": "backtest_per_candle", ...}     # the same, replay.fastpath off (same log)
    {"bench": "verify", "events": E, "per_s": ..., "candles_per_s": ...}

Usage: python tools/bench_backtest.py [--candles 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.historical import generate, write_parquet  # noqa: E402
from engine.instrument import BTCUSDT, Instrument  # noqa: E402
from eventstore import EventStore  # noqa: E402
from replay.backtest import BacktestRequest, execute  # noqa: E402
from replay.cli import DEFAULT_CARD  # noqa: E402
from replay.verify import verify_session  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candles", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.candles
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "runs"
        request = BacktestRequest(
            card=DEFAULT_CARD, n_candles=n, store=store, session="bench", show_progress=False
        )
        t0 = time.perf_counter()
        outcome = execute(request)
        total = time.perf_counter() - t0
        emit(
            bench="backtest_end_to_end",
            candles=n,
            events=outcome.result.events,
            trades=outcome.summary.trades,
            seconds=round(total, 3),
            per_s=round(n / total),
            peak_rss_mb=round(peak_rss_mb(), 1),
        )
        t0 = time.perf_counter()
        series = generate(seed=request.seed, n=n, instrument=Instrument(BTCUSDT))
        generate_s = time.perf_counter() - t0
        run_s = outcome.seconds  # run_backtest alone: log appends and the fold
        emit(
            bench="backtest_phases",
            generate_s=round(generate_s, 3),
            run_s=round(run_s, 3),
            run_per_s=round(n / run_s),
            report_and_rest_s=round(total - run_s - generate_s, 3),
        )
        parquet = Path(tmp) / "candles.parquet"
        write_parquet(series, parquet)
        del series
        from_file = BacktestRequest(
            card=DEFAULT_CARD,
            data=parquet,
            store=store,
            session="bench-parquet",
            show_progress=False,
            write_report=False,
        )
        t0 = time.perf_counter()
        execute(from_file)
        seconds = time.perf_counter() - t0
        emit(
            bench="backtest_from_parquet_no_report",
            candles=n,
            seconds=round(seconds, 3),
            per_s=round(n / seconds),
        )
        slow_store = Path(tmp) / "runs-per-candle"
        per_candle = BacktestRequest(
            card=DEFAULT_CARD,
            data=parquet,
            store=slow_store,
            session="bench-parquet",  # the same name, so the fingerprints compare
            show_progress=False,
            write_report=False,
            fast=False,
        )
        t0 = time.perf_counter()
        slow = execute(per_candle)
        seconds = time.perf_counter() - t0
        with EventStore(store) as a, EventStore(slow_store) as b:
            same = a.stream("bench-parquet").fingerprint == b.stream("bench-parquet").fingerprint
        emit(
            bench="backtest_per_candle_no_report",
            candles=n,
            seconds=round(seconds, 3),
            per_s=round(n / seconds),
            events=slow.result.events,
            same_log_as_fast=same,
        )
        with EventStore(store) as es:
            t0 = time.perf_counter()
            result = verify_session(es, "bench")
            seconds = time.perf_counter() - t0
        assert result.ok, result.divergence
        emit(
            bench="verify",
            events=result.events,
            seconds=round(seconds, 3),
            per_s=round(result.events / seconds),
            candles_per_s=round(n / seconds),
            peak_rss_mb=round(peak_rss_mb(), 1),
        )


if __name__ == "__main__":
    main()
