"""Performance metrics of a session, computed from its ``AccountView``.

Floats appear here for the first time: metrics are for people, never fed back
into accounting. Conventions, so numbers can be checked by hand:

* return = final equity / initial balance - 1; CAGR over the candle span in
  years of 365.25 days.
* Sharpe and Sortino use daily returns of the equity curve (last point of each
  UTC day), annualised with sqrt(365) (crypto trades every day), risk-free rate 0.
  With fewer than three days they use per-candle returns, annualised by the
  number of candles per year. Sortino's downside deviation is the root mean
  square of the negative returns over all returns.
* max drawdown is the largest fall from a running peak of the equity curve, as a
  fraction of that peak.
* exposure is the fraction of candles that closed with a position open.
* profit factor = gross wins / gross losses over closed trades (inf if no loss).
* Calmar = CAGR / max drawdown (both as above; inf if the curve never fell and CAGR
  is positive, 0 if it never fell otherwise).
* max drawdown duration is the longest time from a peak of the equity curve to the
  first later point back at or above it (recovery), or to the last point if the
  curve never recovered; in milliseconds of candle-close time, 0 if it never fell.
* Per-trade numbers use each closed trade's net PnL (realized minus fees and funding
  while open, ``Trade.pnl``). Money is summed exactly in 1e-8 USDT units and turned
  into USDT once at the end: best/worst trade and each side's net PnL are exact;
  average (arithmetic mean) and median (mean of the two middle trades when the count
  is even) are divisions, so they are floats.
* expectancy is the mean per-trade return: net PnL / notional entered (sum of entry
  fill price x quantity), as backtesting.py's "Expectancy [%]" (mean of trade
  returns), here as a fraction. It differs from the average trade, which is in USDT.
* SQN (Van Tharp, as backtesting.py) = sqrt(N) x mean(trade PnL) / stdev(trade PnL),
  sample stdev (N - 1); 0 with fewer than two trades or a zero stdev.
* win rate counts trades with PnL > 0; long/short split gives each side's count,
  win rate and exact net PnL.
* consecutive wins/losses are the longest runs of PnL > 0 / PnL < 0 in closing order;
  a zero-PnL trade ends both runs.
* monthly returns: the equity at the last candle close of each UTC calendar month
  over the equity at the end of the previous month (the initial balance for the
  first), minus 1. A candle belongs to the month of its last millisecond
  (``close_ms - 1``), so the candle closing at 00:00 on the 1st is the previous
  month's. Months with no candle do not appear.
* refusals: what the session refused, as ``projections.refusals`` counts it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np

from engine.instrument import MONEY_SCALE
from projections.account import AccountView
from projections.refusals import RefusalSummary

DAY_MS = 86_400_000
YEAR_MS = 365.25 * DAY_MS


class MonthlyReturn(msgspec.Struct, gc=False):
    month: str  # "YYYY-MM", UTC
    ret: float = msgspec.field(name="return")


class Summary(msgspec.Struct, gc=False):
    start_ms: int
    end_ms: int
    candles: int
    trades: int
    initial_balance: float
    final_equity: float
    total_return: float
    cagr: float
    max_drawdown: float
    sharpe: float
    sortino: float
    win_rate: float
    profit_factor: float
    exposure: float
    fees_paid: float
    funding_paid: float
    buy_and_hold_return: float
    calmar: float
    max_drawdown_duration_ms: int
    avg_trade: float
    median_trade: float
    best_trade: float
    worst_trade: float
    expectancy: float
    sqn: float
    long_trades: int
    long_win_rate: float
    long_pnl: float
    short_trades: int
    short_win_rate: float
    short_pnl: float
    max_consecutive_wins: int
    max_consecutive_losses: int
    monthly_returns: list[MonthlyReturn]
    refusals: RefusalSummary = msgspec.field(default_factory=RefusalSummary)


class TradeStats(msgspec.Struct, gc=False):
    """Per-trade numbers; money in 1e-8 USDT units (exact where it is a sum or a pick)."""

    count: int
    wins: int
    net: int
    best: int
    worst: int
    mean: float
    median: float
    sqn: float
    max_wins: int
    max_losses: int


def trade_stats(pnls: list[int]) -> TradeStats:
    """Count, wins, net, best/worst, mean, median, SQN and streaks of trade PnLs."""
    n = len(pnls)
    if n == 0:
        return TradeStats(0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0)
    ordered = sorted(pnls)
    mid = n // 2
    median = float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    mean = sum(pnls) / n
    sqn = 0.0
    if n >= 2:
        std = float(np.std(np.asarray(pnls, dtype=np.float64), ddof=1))
        sqn = math.sqrt(n) * mean / std if std > 0 else 0.0
    max_wins = max_losses = run_w = run_l = 0
    for p in pnls:
        run_w = run_w + 1 if p > 0 else 0
        run_l = run_l + 1 if p < 0 else 0
        max_wins = max(max_wins, run_w)
        max_losses = max(max_losses, run_l)
    return TradeStats(
        count=n,
        wins=sum(1 for p in pnls if p > 0),
        net=sum(pnls),
        best=ordered[-1],
        worst=ordered[0],
        mean=mean,
        median=median,
        sqn=sqn,
        max_wins=max_wins,
        max_losses=max_losses,
    )


def calmar(cagr: float, mdd: float) -> float:
    if mdd > 0:
        return cagr / mdd
    return math.inf if cagr > 0 else 0.0


def max_drawdown_duration(ts: np.ndarray, equity: np.ndarray) -> int:
    """Longest time from a peak to recovery (or to the last point), in ts units."""
    if len(equity) < 2:
        return 0
    at_peak = equity >= np.maximum.accumulate(equity)
    peak_idx = np.arange(len(equity))  # then, in place, the index of the last peak so far
    peak_idx[~at_peak] = 0
    np.maximum.accumulate(peak_idx, out=peak_idx)
    # Point i extends a fall (under water at i) or ends one (under water at i - 1); either
    # way the fall began at the last peak before i.
    under = ~at_peak[:-1] | ~at_peak[1:]
    if not under.any():
        return 0
    spans = ts[1:][under] - ts[peak_idx[:-1][under]]
    return int(spans.max())


def monthly_returns(ts: np.ndarray, equity: np.ndarray, initial: int) -> list[MonthlyReturn]:
    """Return of each UTC calendar month from month-end equity (see the module doc)."""
    if len(ts) == 0:
        return []
    days = (np.asarray(ts, dtype=np.int64) - 1) // DAY_MS
    # The month changes only where the day does: months of the runs of one day, not of
    # every point (a calendar conversion of a million points was most of a summary).
    starts = np.concatenate([[0], np.flatnonzero(days[1:] != days[:-1]) + 1])
    months = (days[starts] * DAY_MS).astype("datetime64[ms]").astype("datetime64[M]")
    change = np.flatnonzero(months[1:] != months[:-1])
    last = np.concatenate([starts[change + 1] - 1, [len(ts) - 1]])
    names = np.concatenate([months[change], months[-1:]])
    out: list[MonthlyReturn] = []
    prev = float(initial)
    for i, month in zip(last.tolist(), names, strict=True):
        end = float(equity[i])
        out.append(MonthlyReturn(str(month), end / prev - 1.0 if prev > 0 else 0.0))
        prev = end
    return out


def max_drawdown(equity: np.ndarray) -> float:
    if len(equity) == 0:
        return 0.0
    values = equity.astype(np.float64)
    peaks = np.maximum.accumulate(values)
    dd = np.subtract(peaks, values, out=values)  # in place: a million points, two arrays
    with np.errstate(divide="ignore", invalid="ignore"):
        dd /= peaks
    dd[~(peaks > 0)] = 0.0
    return float(dd.max())


def _periodic_returns(ts: np.ndarray, equity: np.ndarray) -> tuple[np.ndarray, float]:
    """Returns and periods per year: daily when the curve spans 3+ days, else per candle."""
    values = equity.astype(np.float64)
    if len(ts) < 2:
        return np.zeros(0), 1.0
    span = int(ts[-1] - ts[0])
    if span >= 3 * DAY_MS:
        day = ts // DAY_MS
        last_of_day = np.flatnonzero(np.diff(day)) if len(day) > 1 else np.zeros(0, dtype=int)
        closes = np.concatenate([values[last_of_day], values[-1:]])
        periods = 365.0
    else:
        closes = values
        periods = YEAR_MS / max(1.0, span / (len(ts) - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.diff(closes) / closes[:-1]
    return rets[np.isfinite(rets)], periods


def sharpe_sortino(ts: np.ndarray, equity: np.ndarray) -> tuple[float, float]:
    rets, periods = _periodic_returns(ts, equity)
    if len(rets) < 2:
        return 0.0, 0.0
    mean = float(rets.mean())
    std = float(rets.std(ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2)))
    scale = math.sqrt(periods)
    sharpe = mean / std * scale if std > 0 else 0.0
    sortino = mean / downside * scale if downside > 0 else 0.0
    return sharpe, sortino


def summarize(view: AccountView, blocks: Sequence[str] = ()) -> Summary:
    """Compute every headline number of a session's report (``blocks``: the card's block
    names, so the summary can name those that never fired)."""
    ts = view.curve_ts.array()
    equity = view.curve_equity.array()
    qty = view.curve_qty.array()
    initial = view.initial_balance
    final = view.equity if len(equity) else view.balance
    total_return = final / initial - 1.0 if initial else 0.0
    span_ms = max(0, view.last_close_ms - view.first_open_ms)
    years = span_ms / YEAR_MS
    if years > 0 and final > 0 and initial > 0:
        cagr = (final / initial) ** (1.0 / years) - 1.0
    else:
        cagr = 0.0
    sharpe, sortino = sharpe_sortino(ts, equity)
    pnls = [t.pnl for t in view.trades]
    wins = sum(p for p in pnls if p > 0)
    losses = -sum(p for p in pnls if p < 0)
    if losses:
        profit_factor = wins / losses
    else:
        profit_factor = math.inf if wins else 0.0
    mdd = max_drawdown(equity)
    every = trade_stats(pnls)
    longs = trade_stats([t.pnl for t in view.trades if t.side == "long"])
    shorts = trade_stats([t.pnl for t in view.trades if t.side == "short"])
    unit = view.instrument.notional_unit if view.instrument is not None else 0
    entered = [(t.pnl, t.entry_notional(unit)) for t in view.trades]
    returns = [pnl / money for pnl, money in entered if money]
    return Summary(
        start_ms=view.first_open_ms,
        end_ms=view.last_close_ms,
        candles=view.candles,
        trades=len(view.trades),
        initial_balance=initial / MONEY_SCALE,
        final_equity=final / MONEY_SCALE,
        total_return=total_return,
        cagr=cagr,
        max_drawdown=mdd,
        sharpe=sharpe,
        sortino=sortino,
        win_rate=(sum(1 for p in pnls if p > 0) / len(pnls)) if pnls else 0.0,
        profit_factor=profit_factor,
        exposure=float(np.count_nonzero(qty)) / len(qty) if len(qty) else 0.0,
        fees_paid=view.fees_paid / MONEY_SCALE,
        funding_paid=view.funding_paid / MONEY_SCALE,
        buy_and_hold_return=(view.last_price / view.first_price - 1.0) if view.first_price else 0.0,
        calmar=calmar(cagr, mdd),
        max_drawdown_duration_ms=max_drawdown_duration(ts, equity),
        avg_trade=every.mean / MONEY_SCALE,
        median_trade=every.median / MONEY_SCALE,
        best_trade=every.best / MONEY_SCALE,
        worst_trade=every.worst / MONEY_SCALE,
        expectancy=sum(returns) / len(returns) if returns else 0.0,
        sqn=every.sqn,
        long_trades=longs.count,
        long_win_rate=longs.wins / longs.count if longs.count else 0.0,
        long_pnl=longs.net / MONEY_SCALE,
        short_trades=shorts.count,
        short_win_rate=shorts.wins / shorts.count if shorts.count else 0.0,
        short_pnl=shorts.net / MONEY_SCALE,
        max_consecutive_wins=every.max_wins,
        max_consecutive_losses=every.max_losses,
        monthly_returns=monthly_returns(ts, equity, initial),
        refusals=view.refusals.summary(blocks),
    )
