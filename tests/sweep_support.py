"""A small SMA-cross card with params and a GBM-like candle file, for the sweep tests."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from adapters.historical import generate, write_parquet
from engine.instrument import BTCUSDT, Instrument
from replay.cli import cli

CARD = """\
name: sma
symbol: BTCUSDT
timeframes:
  execution: 1m
params:
  fast: {default: 10, min: 2, max: 100, sweep: {min: 5, max: 20, step: 5}}
  slow: {default: 30, min: 5, max: 400, sweep: [20, 40]}
features:
  f: {indicator: sma, period: "${fast}"}
  s: {indicator: sma, period: "${slow}"}
blocks:
  - name: up
    when: {cross_above: [f, s]}
    then: {enter_long: {equity_pct: 50}}
  - name: down
    when: {cross_below: [f, s]}
    then: {enter_short: {equity_pct: 50}}
risk:
  allow_flip: true
  max_leverage: 3
"""


def make_inputs(folder: Path, candles: int = 6000, seed: int = 3) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    card = folder / "sma.yaml"
    card.write_text(CARD)
    data = folder / "candles.parquet"
    write_parquet(generate(seed=seed, n=candles, instrument=Instrument(BTCUSDT)), data)
    return card, data


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sweep_json(*args: str) -> dict:
    out = invoke("sweep", *args, "--json")
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def comparable(result: dict) -> dict:
    """What must not depend on the executor: trials (params, metrics, fingerprints), best."""
    return {
        "trials": result["trials"],
        "best": result["best"],
        "dsr": result["dsr"],
        "pbo": result["pbo"],
    }
