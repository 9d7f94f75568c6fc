"""`replay sessions`, `sessions rm` and `sessions prune` on real stores made by `replay run`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from eventstore import EventStore
from replay import snapshots
from replay.cli import cli


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def make_store(tmp_path: Path, names: list[str]) -> Path:
    store = tmp_path / "runs"
    for name in names:
        result = invoke("run", "--store", str(store), "--candles", "1500", "--session", name, "-q")
        assert result.exit_code == 0, result.output
    return store


def listed(store: Path) -> list[dict]:
    out = invoke("sessions", "--store", str(store), "--json")
    assert out.exit_code == 0, out.output
    return [json.loads(line) for line in out.output.splitlines()]


def test_the_table_fits_100_columns_and_names_every_session(tmp_path: Path) -> None:
    store = make_store(tmp_path, ["ma_cross-20250401-120000-long-name", "b"])
    out = CliRunner().invoke(cli, ["sessions", "--store", str(store)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = next(line for line in lines if "period" in line)
    for col in ("id", "mode", "card", "period", "trades", "return", "status"):
        assert col in header
    assert "complete" in out.output and "backtest" in out.output
    rows = listed(store)
    assert [r["id"] for r in rows] == ["ma_cross-20250401-120000-long-name", "b"]
    summary = json.loads((store / "reports" / "b" / "summary.json").read_text())
    assert rows[1]["trades"] == summary["trades"]
    assert rows[1]["total_return"] == summary["total_return"]


def test_rm_deletes_stream_side_streams_and_report_after_confirmation(tmp_path: Path) -> None:
    store = make_store(tmp_path, ["a", "b"])
    # a side stream, as the daemon writes one
    with EventStore(store) as es, snapshots.open_writer(es, "a") as w:
        w.append(b"snap")
    declined = invoke("sessions", "rm", "a", "--store", str(store), input="n\n")
    assert declined.exit_code == 2 and [r["id"] for r in listed(store)] == ["a", "b"]
    done = invoke("sessions", "rm", "a", "--store", str(store), input="y\n")
    assert done.exit_code == 0, done.output
    assert [r["id"] for r in listed(store)] == ["b"]
    with EventStore(store) as es:
        assert [s.name for s in es.streams()] == ["b"]
    assert not (store / "reports" / "a").exists() and (store / "reports" / "b").exists()


def test_rm_of_an_unknown_session_exits_2_and_deletes_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path, ["a"])
    out = invoke("sessions", "rm", "a", "zz", "--store", str(store), "--yes")
    assert out.exit_code == 2 and "zz" in out.output
    assert [r["id"] for r in listed(store)] == ["a"]


def test_a_running_session_is_never_deleted(tmp_path: Path) -> None:
    store = make_store(tmp_path, ["a", "b", "c"])
    with EventStore(store) as es, es.stream("a").writer(durable=True):
        out = invoke("sessions", "rm", "a", "--store", str(store), "--yes")
        assert out.exit_code == 2 and "running" in out.output
        pruned = invoke("sessions", "prune", "--keep", "1", "--store", str(store), "--yes")
        assert pruned.exit_code == 0, pruned.output
        assert "kept a: it is running" in pruned.output
    assert [r["id"] for r in listed(store)] == ["a", "c"]


def test_prune_keeps_the_newest_n(tmp_path: Path) -> None:
    store = make_store(tmp_path, ["a", "b", "c"])
    out = invoke("sessions", "prune", "--keep", "2", "--store", str(store), "--yes", "--json")
    assert out.exit_code == 0, out.output
    assert [json.loads(line)["deleted"] for line in out.output.splitlines()] == ["a"]
    assert [r["id"] for r in listed(store)] == ["b", "c"]
    assert invoke("sessions", "prune", "--keep", "-1", "--store", str(store)).exit_code == 2


def test_a_custom_report_folder_loses_only_the_report_files(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = invoke(
        "run", "--store", str(store), "--candles", "1500", "--session", "a", "-q",
        "--report-dir", str(folder),
    )  # fmt: skip
    assert result.exit_code == 0 and (folder / "report.html").exists()
    assert invoke("sessions", "rm", "a", "--store", str(store), "--yes").exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
