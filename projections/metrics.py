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
    refusals: RefusalSummary = msgspec.field(default_factory=RefusalSummary)


def max_drawdown(equity: np.ndarray) -> float:
    if len(equity) == 0:
        return 0.0
    values = equity.astype(np.float64)
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peaks > 0, (peaks - values) / peaks, 0.0)
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
    return Summary(
        start_ms=view.first_open_ms,
        end_ms=view.last_close_ms,
        candles=view.candles,
        trades=len(view.trades),
        initial_balance=initial / MONEY_SCALE,
        final_equity=final / MONEY_SCALE,
        total_return=total_return,
        cagr=cagr,
        max_drawdown=max_drawdown(equity),
        sharpe=sharpe,
        sortino=sortino,
        win_rate=(sum(1 for p in pnls if p > 0) / len(pnls)) if pnls else 0.0,
        profit_factor=profit_factor,
        exposure=float(np.count_nonzero(qty)) / len(qty) if len(qty) else 0.0,
        fees_paid=view.fees_paid / MONEY_SCALE,
        funding_paid=view.funding_paid / MONEY_SCALE,
        buy_and_hold_return=(view.last_price / view.first_price - 1.0) if view.first_price else 0.0,
        refusals=view.refusals.summary(blocks),
    )
