"""The README's and ideacards/README.md's full example (a non-BTC symbol from the
instruments cache, a 1-minute file driving a 15-minute card, ``--set``) runs as written."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from adapters.historical import generate, write_csv
from engine.events import InstrumentSpec, SessionStarted
from eventstore import EventStore
from replay.cli import cli
from replay.instrument_cache import save_cache
from replay.verify import read_session

ROOT = Path(__file__).resolve().parents[1]
DOGE = InstrumentSpec(
    symbol="DOGEUSDT",
    tick_size="0.00001",
    qty_step="1",
    min_qty="1",
    min_notional="5",
    max_qty="25464000",
    base_coin="DOGE",
    max_leverage="75.00",
)


def example_card(readme: Path) -> str:
    text = readme.read_text()
    section = text[text.index("## A full example: DOGEUSDT") :]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_both_readmes_show_the_same_card() -> None:
    assert example_card(ROOT / "README.md") == example_card(ROOT / "ideacards" / "README.md")


def test_the_doge_example_runs_resampled_with_set_and_verifies(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    save_cache(store, [DOGE], "test")  # what `replay data instruments` leaves
    card = tmp_path / "doge_15m.yaml"
    card.write_text(example_card(ROOT / "ideacards" / "README.md"))
    minutes = generate(seed=4, n=15 * 2000, instrument=DOGE, start_price="0.17")
    data = tmp_path / "doge_1m.csv"
    write_csv(minutes, data)
    runner = CliRunner()
    check = runner.invoke(cli, ["check", str(card), "--set", "fast=12", "--store", str(store)])
    assert check.exit_code == 0, check.output
    assert "DOGEUSDT 15m" in check.output and "tick 0.00001 USDT" in check.output
    checked = runner.invoke(
        cli, ["data", "check", str(data), "--symbol", "DOGEUSDT", "--store", str(store)]
    )
    assert checked.exit_code == 0 and "30000 DOGEUSDT 1m candles" in checked.output
    args = ["run", str(card), "--data", str(data), "--set", "fast=12", "--set", "slow=60"]
    out = runner.invoke(cli, [*args, "--store", str(store), "--json", "--no-report"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["resampled"] == "resampled 1m -> 15m: 2000 bars"
    assert result["params"] == {"fast": 12, "slow": 60} and result["trades"] > 3
    sid = result["session_id"]
    with EventStore(store) as s:
        started = next(e for _, e in read_session(s, sid))
    assert isinstance(started, SessionStarted)
    assert started.instrument == DOGE and started.timeframe == "15m"
    verified = runner.invoke(cli, ["verify", sid, "--store", str(store)])
    assert verified.exit_code == 0, verified.output
