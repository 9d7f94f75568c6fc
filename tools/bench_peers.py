"""Side by side with backtesting.py: one strategy, one CSV, whole processes, same trades.

Builds seeded GBM one-minute candles (100k and 1M rows by default) into a CSV, writes
the benchmark card (SMA(10)/SMA(30) cross, long only, 0.1 BTC market orders at the next
open, 0.055 % taker fee per side, slippage and funding 0, tick 0.01 through the card's
``instrument:`` section), and runs ``replay run CARD --data CSV --json`` (log, hash
chain, summary and report folder) against the same strategy in backtesting.py 0.6.6
(``Backtest.run``; pandas rolling sums of ticks for the SMAs, so both sides compare
exactly, and the card's cross rule, a touch not being a cross), each as a whole
process, alternately, ``--runs`` times each. backtesting.py is AGPL: it lives in its
own venv ``.venv-peers/`` (created here if missing), never a dependency of replay.

Checks both made the same trades (count, and final equity to the cent), then prints
one JSON line per size: each side's median wall time, CPU time and peak RSS, the ratios,
and the load average (other work on the machine shows there).

``--replay-only`` runs replay's side alone (no backtesting.py, no venv): the figure to
compare when only replay's code changed, e.g. main against a branch.

Usage: python tools/bench_peers.py [--candles 100000 1000000] [--runs 3] [--replay-only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / ".venv-peers"
PEER_PACKAGE = "backtesting==0.6.6"
BALANCE = 1_000_000

CARD = """\
name: bench_sma_cross
symbol: BTCUSDT
timeframes: {execution: 1m}
instrument: {tick_size: 0.01, qty_step: 0.001, min_qty: 0.001, min_notional: 0, max_qty: 0,
             quote: USDT, base: BTC}
features:
  fast: {indicator: sma, period: 10}
  slow: {indicator: sma, period: 30}
blocks:
  - name: buy
    when: {all: [flat, {cross_above: [fast, slow]}]}
    then: {enter_long: {qty: 0.1}}
  - name: sell
    when: {all: [long, {cross_below: [fast, slow]}]}
    then: exit
risk: {max_leverage: 100}
execution: {style: market}
sim: {taker_fee: 0.055%, maker_fee: 0.055%, slippage_ticks: 0, funding_rate: 0, leverage: 1}
"""

PEER_SCRIPT = """\
import json, sys
import numpy as np
import pandas as pd
from backtesting import Strategy
from backtesting.lib import FractionalBacktest

def sma(x, n):
    # pandas rolling sums of whole ticks (exact below 2**53), then one division: the
    # comparisons come out as replay's exact integer ones (a float rolling mean drifts,
    # and a near-tie then crosses a bar early)
    return pd.Series(np.round(np.asarray(x) / TICK)).rolling(n).sum().to_numpy() / n

def sign(a, b):
    return 0 if a != a or b != b else int(a > b) - int(a < b)  # NaN (warming up): none

class SmaCross(Strategy):
    # Decided bar by bar in next(), as an event-driven strategy does (and as replay's fold
    # does), with the card's cross rule: a - b turns strictly positive (negative) and was
    # strictly negative (positive) the last time it was not zero; a touch is not a cross.
    def init(self):
        self.fast = self.I(sma, self.data.Close, 10)
        self.slow = self.I(sma, self.data.Close, 30)
        self.last = None

    def next(self):
        if self.last is None:  # the first bar next() sees: the bar before it counts too
            self.last = sign(self.fast[-2], self.slow[-2]) if len(self.fast) > 1 else 0
        now = sign(self.fast[-1], self.slow[-1])
        cross = now if now and self.last == -now else 0
        if now:
            self.last = now
        if not self.position:
            if cross == 1:
                self.buy(size=1)  # one unit of 0.1 BTC (fractional_unit below)
        elif cross == -1:
            self.position.close()

UNIT = 0.1
TICK = 0.01 * UNIT  # FractionalBacktest scales prices by the unit
df = pd.read_csv(sys.argv[1])
df.index = pd.to_datetime(df.pop("open_time"), unit="ms")
df.columns = ["Open", "High", "Low", "Close", "Volume"]
bt = FractionalBacktest(df, SmaCross, cash=%(balance)d, commission=0.00055,
                        fractional_unit=UNIT, finalize_trades=False)
stats = bt.run()
print(json.dumps({"trades": int(stats["# Trades"]),
                  "final_equity": float(stats["Equity Final [$]"])}))
"""


def gbm_csv(path: Path, n: int, seed: int = 14) -> None:
    """Seeded geometric Brownian motion, one-minute bars, prices on a 0.01 grid."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    open_ = np.concatenate([[30_000.0], close[:-1]])
    wiggle = np.abs(rng.normal(0, 0.0004, (2, n)))
    o, c = np.round(open_, 2), np.round(close, 2)
    h = np.maximum.reduce([np.round(np.maximum(open_, close) * (1 + wiggle[0]), 2), o, c])
    lo = np.minimum.reduce([np.round(np.minimum(open_, close) * (1 - wiggle[1]), 2), o, c])
    t = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000
    vol = np.round(rng.uniform(1, 50, n), 3)
    table = pa.table({"open_time": t, "open": o, "high": h, "low": lo, "close": c, "volume": vol})
    pacsv.write_csv(table, str(path))


def ensure_peers() -> Path | None:
    """The peers' python, installing backtesting.py if missing; None (said on stdout)
    when it cannot be installed here (no network): the benchmark is then skipped."""
    python = PEERS / "bin" / "python"
    probe = [str(python), "-c", "import backtesting; assert backtesting.__version__ == '0.6.6'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing {PEER_PACKAGE} into {PEERS} (AGPL: benchmark only)", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEER_PACKAGE], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(json.dumps({"bench": "peers_sma_cross", "skipped": str(exc)}))
        return None
    return python


def run_pair(n: int, runs: int, tmp: Path, peer: Path | None) -> dict[str, object]:
    """Both sides ``runs`` times, alternating (replay alone when ``peer`` is None)."""
    csv = tmp / f"gbm_{n}.csv"
    gbm_csv(csv, n)
    card = tmp / "bench_sma_cross.yaml"
    card.write_text(CARD)
    script = tmp / "peer_sma_cross.py"
    script.write_text(PEER_SCRIPT % {"balance": BALANCE})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ours: list[tuple[float, float, float]] = []
    theirs: list[tuple[float, float, float]] = []
    got: dict[str, dict[str, float]] = {}
    for k in range(runs):
        store = tmp / f"runs-{n}-{k}"
        cmd = [sys.executable, "-c", "import sys; from replay.cli import main; sys.exit(main())"]
        cmd += ["run", str(card), "--data", str(csv), "--balance", str(BALANCE)]
        cmd += ["--store", str(store), "--json"]
        s, cpu, rss, out = _rusage(cmd, env)
        ours.append((s, cpu, rss))
        got["replay"] = json.loads(out)
        if peer is None:
            continue
        s, cpu, rss, out = _rusage([str(peer), str(script), str(csv)], None)
        theirs.append((s, cpu, rss))
        got["backtesting.py"] = json.loads(out)
    if peer is None:
        return _replay_only(n, runs, ours, got["replay"])
    r, b = got["replay"], got["backtesting.py"]
    same = r["trades"] == b["trades"] and round(r["final_equity"], 2) == round(b["final_equity"], 2)
    rs, bs = statistics.median(x[0] for x in ours), statistics.median(x[0] for x in theirs)
    rc, bc = statistics.median(x[1] for x in ours), statistics.median(x[1] for x in theirs)
    return {
        "bench": "peers_sma_cross",
        "candles": n,
        "runs": runs,
        "replay_s": round(rs, 3),
        "backtesting_py_s": round(bs, 3),
        "ratio": round(bs / rs, 2),
        "replay_cpu_s": round(rc, 3),
        "backtesting_py_cpu_s": round(bc, 3),
        "cpu_ratio": round(bc / rc, 2),
        "replay_peak_rss_mb": round(statistics.median(x[2] for x in ours), 1),
        "backtesting_py_peak_rss_mb": round(statistics.median(x[2] for x in theirs), 1),
        "load_average": round(os.getloadavg()[0], 2),
        "trades": [r["trades"], b["trades"]],
        "final_equity": [round(r["final_equity"], 2), round(b["final_equity"], 2)],
        "same_trades": same,
        "replay_all_s": [round(x[0], 3) for x in ours],
        "backtesting_py_all_s": [round(x[0], 3) for x in theirs],
    }


def _replay_only(
    n: int, runs: int, ours: list[tuple[float, float, float]], r: dict[str, float]
) -> dict[str, object]:
    return {
        "bench": "replay_run_csv",
        "candles": n,
        "runs": runs,
        "replay_s": round(statistics.median(x[0] for x in ours), 3),
        "replay_cpu_s": round(statistics.median(x[1] for x in ours), 3),
        "replay_peak_rss_mb": round(statistics.median(x[2] for x in ours), 1),
        "load_average": round(os.getloadavg()[0], 2),
        "trades": r["trades"],
        "final_equity": round(r["final_equity"], 2),
        "replay_all_s": [round(x[0], 3) for x in ours],
        "replay_all_cpu_s": [round(x[1], 3) for x in ours],
    }


def _rusage(cmd: list[str], env: dict[str, str] | None) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB) and stdout of one whole
    process (wait4's rusage). CPU time suffers less than wall time on a shared machine."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(
                f"{cmd[:3]} failed ({proc.returncode}):\n{err.read().decode()[-2000:]}"
            )
        cpu = usage.ru_utime + usage.ru_stime
        return seconds, cpu, usage.ru_maxrss / 1024, out.read().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candles", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replay-only", action="store_true", help="no backtesting.py side")
    args = parser.parse_args()
    peer = None if args.replay_only else ensure_peers()
    if peer is None and not args.replay_only:
        return
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.candles:
            line = run_pair(n, args.runs, Path(tmp), peer)
            print(json.dumps(line), flush=True)
            failed |= line.get("same_trades") is False
    if failed:
        raise SystemExit("the two sides made different trades: the comparison does not hold")


if __name__ == "__main__":
    main()
