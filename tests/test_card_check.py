"""``replay check`` and ``python -m replay.cards`` agree with ``replay run`` on what is valid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.events import InstrumentSpec
from replay.instrument_cache import save_cache
from tests.cards import symbol_card

ROOT = Path(__file__).resolve().parents[1]

PEPE = InstrumentSpec(
    symbol="PEPEUSDT", tick_size="0.0000001", qty_step="100", min_qty="100", base_coin="PEPE"
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    main = "import sys; from replay.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", main, *args], capture_output=True, text=True, cwd=ROOT
    )


def module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replay.cards", *args], capture_output=True, text=True, cwd=ROOT
    )


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("ERROR ")]
    assert len(lines) == 1, proc.stdout
    return lines[0].removeprefix("ERROR ")


def test_pepe_is_refused_by_all_three_with_the_same_message(tmp_path: Path) -> None:
    path, store = str(symbol_card(tmp_path, "PEPEUSDT")), str(tmp_path / "runs")
    run = cli("run", path, "--store", store)
    chk = cli("check", path, "--store", store)
    mod = module("--store", store, path)
    assert (run.returncode, chk.returncode, mod.returncode) == (2, 2, 2)
    assert _error_line(chk).startswith(f"{path}: ")  # which card, then run's message
    message = _error_line(chk).removeprefix(f"{path}: ")
    assert "PEPEUSDT" in message and "replay data instruments" in message
    assert _error_line(mod) == _error_line(chk)
    assert message in " ".join(run.stderr.split())
    assert "Traceback" not in run.stderr + chk.stderr + mod.stderr


@pytest.mark.parametrize("how", ["cache", "instrument"])
def test_pepe_is_accepted_by_all_three_with_a_cache_or_instrument(tmp_path: Path, how: str) -> None:
    path, store = str(symbol_card(tmp_path, "PEPEUSDT")), tmp_path / "runs"
    more: list[str] = []
    if how == "cache":
        save_cache(store, [PEPE], "test")
    else:
        more = ["--instrument", "tick_size=0.0000001,qty_step=100,min_qty=100"]
    run = cli("run", path, "--store", str(store), "-q", "--no-report", *more)
    chk = cli("check", path, "--store", str(store), *more)
    mod = module("--store", str(store), *more, path)
    assert (run.returncode, chk.returncode, mod.returncode) == (0, 0, 0), run.stderr + chk.stdout
    assert chk.stdout == mod.stdout
    assert chk.stdout.startswith(f"OK {path}: alt PEPEUSDT 1m")
    assert "tick 0.0000001 USDT" in chk.stdout


def test_check_lines_and_json_for_several_cards(tmp_path: Path) -> None:
    good, bad = symbol_card(tmp_path, "BTCUSDT"), tmp_path / "bad.yaml"
    bad.write_text("symbol: BTCUSDT\nblokcs: []\n")
    store = str(tmp_path / "runs")
    out = cli("check", str(good), str(bad), "--store", store)
    assert out.returncode == 2
    ok, err = out.stdout.splitlines()
    assert ok.startswith(f"OK {good}: alt BTCUSDT 1m, 2 features, 2 blocks")
    assert err.startswith("ERROR ") and "did you mean 'blocks'?" in err
    js = cli("check", str(good), str(bad), "--store", store, "--json")
    assert js.returncode == 2
    rows = json.loads(js.stdout)
    assert [r["ok"] for r in rows] == [True, False]
    assert rows[0]["instrument"]["tick_size"] == "0.1" and rows[1]["error"] == err[6:]
    assert cli("check", str(good), "--store", store).returncode == 0


def test_check_validates_set_like_run(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "symbol: BTCUSDT\nparams:\n  fast: {default: 5, min: 2}\nfeatures:\n"
        '  f: {indicator: sma, period: "${fast}"}\nblocks:\n'
        "  - when: {gt: [close, f]}\n    then: {enter_long: {equity_pct: 10}}\n"
    )
    store = str(tmp_path / "runs")
    bad = cli("check", str(path), "--set", "fast=1", "--store", store)
    assert bad.returncode == 2 and "below the minimum" in bad.stdout
    unknown = cli("check", str(path), "--set", "fats=3", "--store", store)
    assert unknown.returncode == 2 and "fast" in unknown.stdout
    good = cli("check", str(path), "--set", "fast=3", "--store", store)
    assert good.returncode == 0 and "params fast=3" in good.stdout
