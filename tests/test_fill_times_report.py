"""trades.csv, the report's markers and ``inspect`` tell one time for each fill: when it
happened (a market fill at a bar's open carries that bar's open time), and the log stays
in time order."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.events import CandleClosed, Fill
from eventstore import EventStore
from replay.cli import cli
from replay.verify import read_session


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    store = tmp_path_factory.mktemp("runs")
    args = ["run", "--store", str(store), "--json", "--candles", "3000", "--session", "t"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return store, json.loads(result.output)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def test_market_fills_carry_the_open_time_of_the_bar_whose_price_they_got(run) -> None:
    store, _ = run
    with EventStore(store) as es:
        events = [ev for _, ev in read_session(es, "t")]
    opens = {ev.open_ms: ev for ev in events if isinstance(ev, CandleClosed)}
    fills = [ev for ev in events if isinstance(ev, Fill)]
    assert len(fills) > 10
    for f in fills:  # the default card trades at market: each fill is some bar's open + slip
        bar = opens[f.ts]
        assert f.price == (bar.open + 1 if f.side == "Buy" else bar.open - 1)
    times = [ev.ts for ev in events]
    assert times == sorted(times), "the log is in time order"


def test_trades_csv_inspect_and_the_chart_markers_agree(run) -> None:
    store, out = run
    with Path(out["report"]["trades"]).open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    listed = CliRunner().invoke(
        cli, ["inspect", "t", "--store", str(store), "--type", "Fill", "--json"]
    )
    fill_times = {_iso(json.loads(line)["ts"]) for line in listed.output.splitlines()}
    closed = [r for r in rows if r["close_reason"] != "end of data"]  # open: marked at the end
    for row in rows:
        assert row["entry_time"] in fill_times
    for row in closed:
        assert row["exit_time"] in fill_times
    html = Path(out["report"]["html"]).read_text()

    def markers(name: str) -> list[str]:
        m = re.search(r'"name":"' + name + r'",(?:"text":\[[^\]]*\],)?"x":\[([^\]]*)\]', html)
        assert m, name
        return [t.strip('"')[:16].replace("T", " ") for t in m.group(1).split(",") if t]

    entries = sorted(markers("long entry") + markers("short entry"))
    assert entries == sorted(r["entry_time"] for r in rows)
    assert markers("exit") == [r["exit_time"] for r in closed]
