"""Benchmark the whole backtest pipeline: data, log append, fold, report; then verify.

Runs the bundled moving-average cross card over N built-in 1-minute candles into a
temporary store, exactly as ``replay run`` does, and prints JSON lines:

    {"bench": "backtest_end_to_end", "candles": N, "per_s": ..., "peak_rss_mb": ...}
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

from eventstore import EventStore  # noqa: E402
from replay.backtest import BacktestRequest, execute  # noqa: E402
from replay.cli import DEFAULT_CARD  # noqa: E402
from replay.verify import verify_session  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candles", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "runs"
        request = BacktestRequest(
            card=DEFAULT_CARD,
            n_candles=args.candles,
            store=store,
            session="bench",
            show_progress=False,
        )
        t0 = time.perf_counter()
        outcome = execute(request)
        seconds = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "bench": "backtest_end_to_end",
                    "candles": args.candles,
                    "events": outcome.result.events,
                    "trades": outcome.summary.trades,
                    "seconds": round(seconds, 3),
                    "per_s": round(args.candles / seconds),
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                }
            ),
            flush=True,
        )
        with EventStore(store) as es:
            t0 = time.perf_counter()
            result = verify_session(es, "bench")
            seconds = time.perf_counter() - t0
        assert result.ok, result.divergence
        print(
            json.dumps(
                {
                    "bench": "verify",
                    "events": result.events,
                    "seconds": round(seconds, 3),
                    "per_s": round(result.events / seconds),
                    "candles_per_s": round(args.candles / seconds),
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
