"""``replay indicators`` and the ideacards/README.md table, both generated from the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from engine.indicators import INDICATORS, make_indicator
from replay.cli import cli
from replay.indicator_reference import markdown_table, readme_table

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (ROOT / "ideacards" / "README.md").read_text()
    assert readme_table(readme) == markdown_table(), (
        "ideacards/README.md's indicator table is out of date: paste the output of"
        " `replay indicators --markdown` between its markers"
    )


def test_every_indicator_is_in_the_table_with_its_defaults_and_outputs() -> None:
    table = markdown_table()
    for spec in INDICATORS.values():
        row = next(r for r in table.splitlines() if r.startswith(f"| `{spec.name}` |"))
        for p in spec.params:
            assert f"{p.name}={p.default}" in row
        for o in spec.outputs:
            assert f"`{o}`" in row
        assert spec.ready_after and spec.current_bar and spec.seeding


def test_the_command_lists_every_indicator_and_json_matches_the_registry() -> None:
    out = CliRunner().invoke(cli, ["indicators"])
    assert out.exit_code == 0
    for name in INDICATORS:
        assert f"\n{name}: " in "\n" + out.output
    js = json.loads(CliRunner().invoke(cli, ["indicators", "--json", "macd"]).output)
    assert [d["name"] for d in js] == ["macd"]
    assert [(p["name"], p["default"]) for p in js[0]["params"]] == [
        ("fast", 12),
        ("slow", 26),
        ("signal", 9),
        ("source", "close"),
    ]
    assert [o["name"] for o in js[0]["outputs"]] == ["macd", "signal", "hist"]
    assert "TA-Lib" in js[0]["seeding"]
    md = CliRunner().invoke(cli, ["indicators", "--markdown"])
    assert md.output == markdown_table() + "\n"


def test_an_unknown_name_exits_2_with_a_suggestion() -> None:
    out = CliRunner().invoke(cli, ["indicators", "atrr"])
    assert out.exit_code == 2 and "did you mean 'atr'?" in out.output


def _ready_after(name: str, **params: int) -> int:
    ind = make_indicator(name, params)
    rng = np.random.default_rng(1)
    for i in range(500):
        c = 100_000 + int(rng.integers(-50, 50))
        ind.update(60_000 * (i + 1), c, c + 30, c - 30, c, 10)
        if ind.ready:
            return i + 1
    raise AssertionError(f"{name} never became ready")


def test_ready_after_says_what_the_indicators_do() -> None:
    # the wording of the reference, checked against the running indicators
    assert INDICATORS["atr"].ready_after == "period" and _ready_after("atr", period=14) == 14
    assert INDICATORS["rsi"].ready_after == "period + 1" and _ready_after("rsi", period=14) == 15
    assert INDICATORS["macd"].ready_after == "slow + signal - 1"
    assert _ready_after("macd", fast=12, slow=26, signal=9) == 26 + 9 - 1
    assert INDICATORS["roc"].ready_after == "period + 1" and _ready_after("roc", period=10) == 11


def test_atr_seeding_differs_from_ta_lib_as_the_reference_says() -> None:
    """TA-Lib's ATR (written out here: TR from bar 2 on, SMA seed of TRs 2..p+1, then
    Wilder) starts one bar later; the gap shrinks by (p-1)/p per bar, as documented."""
    p = 14
    rng = np.random.default_rng(7)
    close = 100_000 + np.cumsum(rng.integers(-40, 41, 400))
    high, low = close + rng.integers(0, 60, 400), close - rng.integers(0, 60, 400)
    ours = make_indicator("atr", {"period": p})
    mine: list[float] = []
    for i in range(400):
        ours.update(60_000 * (i + 1), int(close[i]), int(high[i]), int(low[i]), int(close[i]), 1)
        mine.append(ours.value)
    tr = np.maximum(high[1:] - low[1:], np.abs(high[1:] - close[:-1]))
    tr = np.maximum(tr, np.abs(low[1:] - close[:-1])).astype(float)
    talib = [float("nan")] * (p + 1)
    atr = tr[:p].mean()
    talib[p] = atr
    for x in tr[p:]:
        atr = (atr * (p - 1) + x) / p
        talib.append(atr)
    assert np.isnan(talib[p - 1]) and not np.isnan(mine[p - 1])  # ours is ready a bar earlier
    gaps = [abs(mine[i] - talib[i]) for i in range(p, 400)]
    for i in range(1, len(gaps)):
        assert abs(gaps[i] - gaps[i - 1] * (p - 1) / p) < 1e-9 * max(1.0, gaps[0])
    assert gaps[-1] < 1e-6 * gaps[0]
