"""`replay diff`: metrics side by side and a common start (--from, --after-warmup)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from replay.cli import cli


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runs")
    for name, extra in (("whole", []), ("late", ["--start", "2024-01-01T12:00"])):
        out = invoke("run", "--store", str(path), "--candles", "2000", "--session", name, "-q",
                     *extra)  # fmt: skip
        assert out.exit_code == 0, out.output
    return path


def diff_json(store: Path, *args: str) -> dict:
    out = invoke("diff", *args, "--store", str(store), "--json")
    assert out.exit_code in (0, 1), out.output
    return json.loads(out.output)


def test_metrics_are_side_by_side(store: Path) -> None:
    summary = json.loads((store / "reports" / "whole" / "summary.json").read_text())
    same = diff_json(store, "whole", "whole")
    assert same["same"] is True and same["a"] == same["b"]
    assert same["a"]["trades"] == summary["trades"]
    text = invoke("diff", "whole", "late", "--store", str(store)).output
    line = next(x for x in text.splitlines() if x.startswith("trades"))
    late = json.loads((store / "reports" / "late" / "summary.json").read_text())
    assert line.split()[1:] == [f"{summary['trades']:,}", f"{late['trades']:,}"]


def test_after_warmup_starts_at_the_later_first_candle(store: Path) -> None:
    noon_close = int(datetime(2024, 1, 1, 12, 1, tzinfo=UTC).timestamp() * 1000)
    whole = diff_json(store, "whole", "late")
    warm = diff_json(store, "whole", "late", "--after-warmup")
    assert whole["from_ms"] is None and warm["from_ms"] == noon_close
    assert sum(warm["counts_a"].values()) < sum(whole["counts_a"].values())
    assert warm["counts_b"] == whole["counts_b"]  # late starts there anyway
    by_time = diff_json(store, "whole", "late", "--from", "2024-01-01T12:01")
    assert by_time["counts_a"] == warm["counts_a"]


def test_bad_start_options_exit_2(store: Path) -> None:
    assert invoke("diff", "whole", "late", "--store", str(store), "--from", "noon").exit_code == 2
    both = invoke("diff", "whole", "late", "--store", str(store), "--from", "2024-01-01",
                  "--after-warmup")  # fmt: skip
    assert both.exit_code == 2


def test_the_first_difference_reads_as_a_decision(store: Path) -> None:
    text = invoke("diff", "whole", "late", "--store", str(store)).output
    lines = [x for x in text.splitlines() if x.startswith(("  whole:", "  late:"))]
    assert len(lines) == 2, text
    assert any(": action=" in x or "price=" in x for x in lines)
    assert '[["' not in text  # not compare's internal tuples
