"""Issue 16's metrics, each against an independent computation of its stated convention.

Hand-built trade lists and equity curves whose answers are also worked out by hand
in the comments, then one real `replay run` recomputed from its trades.csv/equity.csv.
No backtesting.py or QuantStats: their formulas are restated here in plain Python.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from engine.events import BUY, SELL
from engine.instrument import MONEY_SCALE
from projections.account import AccountView
from projections.metrics import (
    calmar,
    max_drawdown_duration,
    monthly_returns,
    summarize,
    trade_stats,
)
from replay.cli import cli
from tests.test_projections_account import MIN, account, candle, fill, started

ROOT = Path(__file__).resolve().parents[1]


def test_four_trades_with_known_mean_median_and_sqn() -> None:
    # PnLs 300, -100, 200, -200: mean 50; median (-100 + 200) / 2 = 50;
    # deviations 250, -150, 150, -250 -> sample variance 170000 / 3; SQN = 2 * 50 / sqrt(that).
    s = trade_stats([300, -100, 200, -200])
    assert (s.count, s.wins, s.net, s.best, s.worst) == (4, 2, 200, 300, -200)
    assert s.mean == 50.0 and s.median == 50.0
    assert s.sqn == pytest.approx(2 * 50 / math.sqrt(170_000 / 3))
    assert s.sqn == pytest.approx(0.42008402520840)
    assert (s.max_wins, s.max_losses) == (1, 1)


def test_sqn_matches_a_restatement_of_van_tharps_formula() -> None:
    pnls = [120, -40, 35, 35, -90, 410, -5, 60, -60, 7]
    expected = math.sqrt(len(pnls)) * statistics.fmean(pnls) / statistics.stdev(pnls)
    assert trade_stats(pnls).sqn == pytest.approx(expected)
    assert trade_stats(pnls).median == statistics.median(pnls) == 21.0
    assert trade_stats([5]).sqn == 0.0 and trade_stats([3, 3]).sqn == 0.0  # no spread, no SQN
    assert trade_stats([]).count == 0


def test_streaks_count_runs_and_a_zero_trade_breaks_both() -> None:
    s = trade_stats([1, 2, 3, -1, -2, 0, -3, 4, -1, -1, -1, -1])
    assert (s.max_wins, s.max_losses) == (3, 4)
    s = trade_stats([-1, -1, 0, -1, -1, -1])
    assert (s.max_wins, s.max_losses) == (0, 3)


def _duration_by_walking(ts: list[int], eq: list[float]) -> int:
    """Peak-to-recovery (or to the end) spans, found by walking the curve point by point."""
    best, peak, peak_t, under = 0, eq[0], ts[0], False
    for t, v in zip(ts, eq):
        if v >= peak:
            if under:
                best = max(best, t - peak_t)
            peak, peak_t, under = v, t, False
        else:
            under = True
            best = max(best, t - peak_t)
    return best


@pytest.mark.parametrize(
    ("eq", "expected"),
    [
        # peak 120 at t=1, back to 120 at t=4 -> 3; second fall from t=4 to the end t=6 -> 2
        ([100, 120, 90, 110, 120, 100, 105], 3),
        # 0 -> 2 (recovered at 100), then peak 110 at t=3 never regained until the end t=7 -> 4
        ([100, 90, 100, 110, 80, 85, 90, 95], 4),
        ([100, 101, 102, 103], 0),
        ([100, 50], 1),
    ],
)
def test_drawdown_duration_runs_from_peak_to_recovery_or_end(eq: list[int], expected: int) -> None:
    ts = [1_000 * i for i in range(len(eq))]
    got = max_drawdown_duration(np.array(ts, dtype=np.int64), np.array(eq, dtype=np.int64))
    assert got == expected * 1_000 == _duration_by_walking(ts, [float(v) for v in eq])


def test_calmar_is_cagr_over_max_drawdown() -> None:
    assert calmar(0.30, 0.12) == pytest.approx(2.5)
    assert calmar(-0.2, 0.1) == pytest.approx(-2.0)
    assert calmar(0.1, 0.0) == math.inf and calmar(0.0, 0.0) == 0.0


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_monthly_returns_from_month_end_equity() -> None:
    # The candle closing at 2024-02-01 00:00 is January's last (its last ms is Jan 31).
    ts = [_ms("2024-01-31 12:00"), _ms("2024-02-01 00:00"), _ms("2024-02-15 00:00")]
    ts.append(_ms("2024-04-02 00:00"))  # March has no candle: no March row
    eq = [110, 121, 100, 150]
    got = monthly_returns(np.array(ts, dtype=np.int64), np.array(eq, dtype=np.int64), 100)
    assert [m.month for m in got] == ["2024-01", "2024-02", "2024-04"]
    assert [m.ret for m in got] == pytest.approx([0.21, 100 / 121 - 1, 0.5])


@pytest.mark.parametrize("seed", range(40))
def test_monthly_returns_equal_the_month_of_every_point(seed: int) -> None:
    """Months are found from the runs of one day; the same rows as the calendar month of
    every point (``ts - 1``), month ends, gaps, times before 1970 and unsorted points too."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    step = int(rng.choice([1, 60_000, 3_600_000, 86_400_000, 9 * 86_400_000]))
    ts = int(rng.integers(-(10**12), 10**12)) + np.cumsum(rng.integers(1, 4, n)) * step
    if seed % 5 == 0:
        ts = rng.permutation(ts)
    eq = rng.integers(1, 10**9, n)
    months = (ts - 1).astype("datetime64[ms]").astype("datetime64[M]")
    last = [*np.flatnonzero(months[1:] != months[:-1]).tolist(), n - 1]
    want, prev = [], 77.0
    for i in last:
        want.append((str(months[i]), float(eq[i]) / prev - 1.0))
        prev = float(eq[i])
    got = monthly_returns(ts.astype(np.int64), eq.astype(np.int64), 77)
    assert [(m.month, m.ret) for m in got] == want


def test_summary_splits_long_and_short_and_states_expectancy() -> None:
    # Long 1 BTC 100 -> 110: +10 USDT on 100 entered (+10%).
    # Short 2 BTC 100 -> 105: -10 USDT on 200 entered (-5%). Expectancy (10% - 5%) / 2 = 2.5%.
    events = [started(), candle(0, "100")]
    events += [fill(1, BUY, "1", "100.0", "0", ts=MIN), candle(1, "110")]
    events += [fill(2, SELL, "1", "110.0", "0", ts=2 * MIN), candle(2, "100")]
    events += [fill(3, SELL, "2", "100.0", "0", ts=3 * MIN), candle(3, "105")]
    events += [fill(4, BUY, "2", "105.0", "0", ts=4 * MIN), candle(4, "105")]
    s = summarize(account(events))
    assert (s.long_trades, s.long_win_rate, s.long_pnl) == (1, 1.0, 10.0)
    assert (s.short_trades, s.short_win_rate, s.short_pnl) == (1, 0.0, -10.0)
    assert s.expectancy == pytest.approx(0.025)
    assert (s.avg_trade, s.median_trade, s.best_trade, s.worst_trade) == (0.0, 0.0, 10.0, -10.0)
    assert (s.max_consecutive_wins, s.max_consecutive_losses) == (1, 1)
    # Equity 10000, 10000, 10010, 10010, 10000, 10000: under water from t=3 min to the end.
    assert s.max_drawdown_duration_ms == 2 * MIN
    assert [m.month for m in s.monthly_returns] == ["1970-01"]


def test_a_real_run_agrees_with_its_own_csv_files(tmp_path: Path) -> None:
    card = ROOT / "ideacards" / "ma_cross.yaml"
    result = CliRunner().invoke(
        cli,
        ["run", str(card), "--candles", "50000", "--store", str(tmp_path), "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    summary = json.loads(Path(out["report"]["summary"]).read_text())
    with Path(out["report"]["trades"]).open() as fh:
        # the summary counts closed trades; trades.csv ends with the one still open, if any
        trades = [r for r in csv.DictReader(fh) if r["close_reason"] != "end of data"]
    with Path(out["report"]["equity"]).open() as fh:
        curve = list(csv.DictReader(fh))
    assert len(trades) == summary["trades"] >= 10
    pnl = [Decimal(t["pnl"]) for t in trades]
    units = [int(p * MONEY_SCALE) for p in pnl]
    # Money that is a pick or a sum is exact to the 1e-8 unit.
    assert Decimal(str(summary["best_trade"])) == max(pnl)
    assert Decimal(str(summary["worst_trade"])) == min(pnl)
    for side in ("long", "short"):
        mine = [Decimal(t["pnl"]) for t in trades if t["side"] == side]
        assert summary[f"{side}_trades"] == len(mine)
        assert Decimal(str(summary[f"{side}_pnl"])) == sum(mine, Decimal(0))
        won = sum(1 for p in mine if p > 0) / len(mine) if mine else 0.0
        assert summary[f"{side}_win_rate"] == pytest.approx(won)
    assert summary["long_trades"] > 0 and summary["short_trades"] > 0
    assert summary["avg_trade"] == pytest.approx(float(statistics.fmean(pnl)))
    assert summary["median_trade"] == pytest.approx(float(statistics.median(pnl)))
    sqn = math.sqrt(len(units)) * statistics.fmean(units) / statistics.stdev(units)
    assert summary["sqn"] == pytest.approx(sqn)
    returns = [
        float(Decimal(t["pnl"]) / (Decimal(t["entry_price"]) * Decimal(t["qty"]))) for t in trades
    ]
    assert summary["expectancy"] == pytest.approx(statistics.fmean(returns), rel=1e-6)
    longest = {1: 0, -1: 0}
    run = {1: 0, -1: 0}
    for p in pnl:
        for sign in (1, -1):
            run[sign] = run[sign] + 1 if p * sign > 0 else 0
            longest[sign] = max(longest[sign], run[sign])
    assert (summary["max_consecutive_wins"], summary["max_consecutive_losses"]) == (
        longest[1],
        longest[-1],
    )
    assert summary["calmar"] == pytest.approx(summary["cagr"] / summary["max_drawdown"])
    ts = [int(r["time_ms"]) for r in curve]
    eq = [float(r["equity"]) for r in curve]
    assert summary["max_drawdown_duration_ms"] == _duration_by_walking(ts, eq)
    # Month-end equity over the previous month-end (the initial balance first).
    ends: dict[str, float] = {}
    for t, v in zip(ts, eq):
        ends[datetime.fromtimestamp((t - 1) / 1000, tz=UTC).strftime("%Y-%m")] = v
    prev, expected = summary["initial_balance"], []
    for month, v in ends.items():
        expected.append({"month": month, "return": pytest.approx(v / prev - 1)})
        prev = v
    assert len(expected) >= 2 and summary["monthly_returns"] == expected
    html = Path(out["report"]["html"]).read_text()
    assert html.count("<tr><th>20") == len(expected)  # one monthly row per month
    assert "sqn" in html and "calmar" in html and "id='monthly-heatmap'" in html


def test_the_monthly_heatmap_has_a_labelled_cell_per_month_and_blanks_elsewhere() -> None:
    from replay.report import _monthly_heatmap

    html = _monthly_heatmap(
        [{"month": "2023-12", "return": 0.21}, {"month": "2024-01", "return": -0.05}]
    )
    assert '"type":"heatmap"' in html
    assert '"y":["2023","2024"]' in html
    # Two years x 12 months: two labelled cells, 22 empty ones.
    assert '["","","","","","","","","","","","+21.00%"]' in html
    assert '["-5.00%","","","","","","","","","","",""]' in html
    assert _monthly_heatmap([]) == ""


def test_a_session_without_candles_or_trades_has_zero_metrics_not_errors() -> None:
    s = summarize(AccountView().fold([started()]))
    assert (s.sqn, s.calmar, s.expectancy, s.avg_trade, s.best_trade) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert (s.long_trades, s.short_trades, s.max_drawdown_duration_ms) == (0, 0, 0)
    assert s.monthly_returns == []
