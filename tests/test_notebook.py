"""``replay.open``: a session as pandas DataFrames, agreeing with the report it came from."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import replay
from replay.cli import cli
from replay.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nb")
    result = CliRunner().invoke(
        cli,
        ["run", str(ROOT / "ideacards" / "breakout_scaling.yaml"), "--store",
         str(root / "runs"), "--session", "example", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "runs"


def test_the_frames_agree_with_the_report_files(store: Path) -> None:
    s = replay.open(store, "example")
    folder = store / "reports" / "example"
    summary = json.loads((folder / "summary.json").read_text())
    with (folder / "trades.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(s.trades) == len(rows) and list(s.trades.columns) == list(rows[0])
    assert s.trades["pnl"].sum() == pytest.approx(sum(float(r["pnl"]) for r in rows))
    assert list(s.trades["close_reason"]) == [r["close_reason"] for r in rows]
    assert len(s.equity) == len(s.candles) == summary["candles"]
    assert s.equity["equity"].iloc[-1] == pytest.approx(summary["final_equity"])
    assert (s.candles["high"] >= s.candles["low"]).all()
    assert s.summary["fingerprint"] == summary["fingerprint"]
    events = s.events
    assert events["seq"].tolist() == list(range(1, len(events) + 1))
    assert events["type"].iloc[0] == "SessionStarted"
    assert (events["type"] == "Fill").sum() > 0


def test_the_readme_example_runs(store: Path) -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Sessions in a notebook") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(store.parent)  # the example opens "runs"
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code.group(1), "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert "equity" in out.getvalue() and "close_reason" in out.getvalue()


def test_an_unknown_session_or_store_is_a_clear_error(store: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such session"):
        replay.open(store, "nope")
    with pytest.raises(InputError, match="no replay store"):
        replay.open(tmp_path / "empty", "example")
