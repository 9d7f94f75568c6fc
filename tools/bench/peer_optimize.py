"""backtesting.py's Backtest.optimize on the issue 15 SMA grid; runs in .venv-peers.

Usage: .venv-peers/bin/python tools/bench/peer_optimize.py CANDLES.csv
Prices in the file are per 0.1 BTC, so one unit is the 0.1 BTC replay trades.
Prints one JSON line: seconds, the best params and their return.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover


def sma(values: object, n: int) -> object:
    return pd.Series(values).rolling(n).mean()


class SmaCross(Strategy):
    fast = 10
    slow = 100

    def init(self) -> None:
        self.f = self.I(sma, self.data.Close, self.fast)
        self.s = self.I(sma, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.f, self.s):
            if not self.position:
                self.buy(size=1)
        elif crossover(self.s, self.f) and self.position:
            self.position.close()


def main() -> None:
    df = pd.read_csv(sys.argv[1], index_col=0, parse_dates=True)
    bt = Backtest(df, SmaCross, cash=10_000, commission=0.00055, trade_on_close=False)
    t0 = time.perf_counter()
    stats = bt.optimize(
        fast=range(5, 51, 5),
        slow=range(20, 201, 20),
        constraint=lambda p: p.fast < p.slow,
        maximize="Return [%]",
    )
    seconds = time.perf_counter() - t0
    best = stats._strategy
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "best": {"fast": int(best.fast), "slow": int(best.slow)},
                "return": float(stats["Return [%]"]) / 100,
                "trades": int(stats["# Trades"]),
            }
        )
    )


if __name__ == "__main__":
    main()
