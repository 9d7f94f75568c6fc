"""`replay inspect` in human units, `--at` summaries and bounds, and JSON errors under --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from replay.cli import cli


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runs")
    result = invoke("run", "--store", str(path), "--candles", "1500", "--session", "s", "-q")
    assert result.exit_code == 0, result.output
    return path


def fills(store: Path, *extra: str) -> list[dict]:
    out = invoke("inspect", "s", "--store", str(store), "--type", "Fill", "--limit", "1", "--json",
                 *extra)  # fmt: skip
    assert out.exit_code == 0, out.output
    return [json.loads(line) for line in out.output.splitlines()]


def test_events_are_in_usdt_and_btc_unless_raw(store: Path) -> None:
    human, raw = fills(store)[0], fills(store, "--raw")[0]
    # BTCUSDT: tick 0.1, qty step 0.001, money 1e-8
    assert float(human["price"]) == pytest.approx(raw["price"] * 0.1)
    assert float(human["qty"]) == pytest.approx(raw["qty"] * 0.001)
    assert float(human["fee"]) == pytest.approx(raw["fee"] / 1e8)
    assert isinstance(raw["price"], int) and isinstance(human["price"], str)
    text = invoke("inspect", "s", "--store", str(store), "--type", "Fill", "--limit", "1")
    assert f"price={human['price']}" in text.output


def test_at_summarizes_and_full_shows_everything(store: Path) -> None:
    summary = json.loads(invoke("inspect", "s", "--store", str(store), "--at", "1200",
                                "--json").output)  # fmt: skip
    assert summary["seq"] == 1200 and summary["warm"] is True
    assert set(summary) >= {"account", "open_orders", "time", "halted"}
    assert "engine" not in summary
    full = json.loads(invoke("inspect", "s", "--store", str(store), "--at", "1200", "--full",
                             "--json").output)  # fmt: skip
    assert full["engine"]["position"] is not None
    assert full["account"] == summary["account"]


@pytest.mark.parametrize("at", ["-1", "0", "99999999"])
def test_at_outside_the_log_exits_2(store: Path, at: str) -> None:
    out = invoke("inspect", "s", "--store", str(store), "--at", at)
    assert out.exit_code == 2 and "--at" in out.output and "Traceback" not in out.output


def test_an_unknown_type_lists_the_valid_ones(store: Path) -> None:
    out = invoke("inspect", "s", "--store", str(store), "--type", "Fil")
    assert out.exit_code == 2
    assert "'Fill'" in out.output and "SubmitOrder" in out.output and "CandleClosed" in out.output


def test_errors_under_json_are_one_json_object_on_stdout(store: Path) -> None:
    runner = CliRunner()
    for args in (
        ["inspect", "s", "--store", str(store), "--at", "-5", "--json"],
        ["inspect", "nope", "--store", str(store), "--json"],
        ["sessions", "rm", "nope", "--store", str(store), "--json", "--yes"],
        ["verify", "nope", "--store", str(store), "--json"],
    ):
        out = runner.invoke(cli, args, catch_exceptions=False)
        assert out.exit_code == 2, (args, out.output)
        body = json.loads(out.stdout)
        assert body["code"] == 2 and isinstance(body["error"], str) and body["error"]
