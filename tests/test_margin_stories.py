"""Stories through a whole backtest (card -> engine -> simulated venue -> log): the same
5x long through the same 12 % dip is liquidated under isolated margin and survives under
cross, and funding is paid at each 8 h settlement. Numbers by hand in the comments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.events import Fill, FundingPaid, Liquidated
from engine.instrument import money_from_str
from eventstore import EventStore
from replay.cli import cli
from replay.verify import read_session

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a settlement time
# (open, high, low, close) per hour from 00:00; the dip is the 03:00 bar.
BARS = [(50000, 50000, 50000, 50000)] * 3 + [(50000, 50000, 44000, 45000)]
BARS += [(45000, 45000, 45000, 45000)] * 14  # to 18:00: settlements at 08:00 and 16:00


def _files(tmp_path: Path, mode: str) -> tuple[Path, Path]:
    data = tmp_path / "dip.csv"
    rows = [f"{T0 + i * HOUR},{o},{h},{lo},{c},1000" for i, (o, h, lo, c) in enumerate(BARS)]
    data.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    card = tmp_path / f"{mode}.yaml"
    card.write_text(
        f"""name: dip_{mode}
symbol: BTCUSDT
timeframes: {{execution: 1h}}
blocks:
  - name: enter_once
    when: "flat and trades_today < 1"
    then: {{enter_long: {{equity_pct: 500}}}}
risk: {{max_leverage: 10}}
sim: {{leverage: 10, margin_mode: {mode}, slippage_ticks: 0}}
"""
    )
    return card, data


def _run(tmp_path: Path, mode: str) -> list:
    card, data = _files(tmp_path, mode)
    store = tmp_path / "runs"
    args = ["run", str(card), "--data", str(data), "--store", str(store), "--session", mode]
    result = CliRunner().invoke(cli, [*args, "--json", "-q", "--no-report"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["funding"].startswith("0.01% every 8h")
    with EventStore(store) as es:
        return [ev for _, ev in read_session(es, mode)]


@pytest.mark.parametrize("mode", ["isolated", "cross"])
def test_a_5x_long_through_a_12_percent_dip(tmp_path: Path, mode: str) -> None:
    events = _run(tmp_path, mode)
    (entry,) = [e for e in events if isinstance(e, Fill)]
    # 500 % of 10,000 USDT at the 00:00 close of 50,000: 1 BTC, filled at the 01:00 open.
    assert (entry.qty, entry.price, entry.ts) == (1000, 500000, T0 + HOUR)
    liqs = [e for e in events if isinstance(e, Liquidated)]
    funding = [e for e in events if isinstance(e, FundingPaid)]
    if mode == "isolated":
        # IM 5,000, MM 250: liquidated at 50,000 - 4,750 = 45,250, closed at the bankruptcy
        # price 45,000, when the 03:00 bar's path reaches it: open 50,000 -> high 50,000
        # (nearer) -> low 44,000 -> close 45,000 is 0 + 6,000 + 1,000 = 7,000 USDT long and
        # 45,250 lies 4,750 along it, so 4,750 / 7,000 of the hour.
        (liq,) = liqs
        assert liq.price == 450000
        assert liq.ts == T0 + 3 * HOUR + HOUR * 4_750 // 7_000
        assert funding == []  # flat before 08:00
    else:
        # The wallet backs it: 9,972.5 after the 27.5 fee, LP = 50,000 - 9,722.5 = 40,277.5.
        assert liqs == []
        # 1 BTC valued at 45,000 x 0.01 % = 4.5 USDT at 08:00 and at 16:00.
        assert [(e.ts, e.amount) for e in funding] == [
            (T0 + 8 * HOUR, money_from_str("4.5")),
            (T0 + 16 * HOUR, money_from_str("4.5")),
        ]
