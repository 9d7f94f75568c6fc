"""Session ids are tokens, not paths: every command refuses a bad one with exit 2 (issue 12 §6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventstore import EventStore
from replay.cli import cli
from replay.errors import InputError
from replay.session_ids import MAX_LENGTH, check_session_id, safe_stem

BAD = {
    "path escape": "../../ESCAPED",
    "absolute path": "/tmp/replay-abs-ESCAPED",
    "escape character": "a\x1b[31mred",
    "newline": "two\nlines",
    "empty": "",
    "1000 characters": "a" * 1000,
    "leading dot": ".hidden",
    "slash": "a/b",
}


def invoke(*args: str, cwd: Path | None = None) -> Result:
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def commands(name: str, store: Path, card: str) -> list[list[str]]:
    """Every command that takes a session id, with ``name`` in that place."""
    s = ["--store", str(store)]
    return [
        ["run", "--candles", "3000", "--session", name, *s],
        ["demo", card, "--session", name, "--venue", "emulator", "--emulator-url", "http://x", *s],
        ["live", card, "--session", name, "--i-understand-this-trades-real-money", *s],
        ["verify", name, *s],
        ["inspect", name, *s],
        ["report", name, *s],
        ["diff", name, "ok", *s],
        ["diff", "ok", name, *s],
        ["halt", name, *s],
    ]


@pytest.mark.parametrize("case", list(BAD))
def test_every_command_refuses_a_bad_session_id_with_exit_2(case: str, tmp_path: Path) -> None:
    name = BAD[case]
    store = tmp_path / "deep" / "er" / "runs"
    card = str(Path(__file__).resolve().parents[1] / "ideacards" / "ma_cross.yaml")
    for args in commands(name, store, card):
        result = invoke(*args, cwd=tmp_path)
        assert result.exit_code == 2, (args, result.output)
        assert "is not a valid session id" in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert "\x1b" not in result.output and "two\nlines" not in result.output
        assert len(result.output) < 1200  # a 1000-character name is not echoed in full
    # Nothing was written anywhere: not the store, not a report outside it.
    assert sorted(p.name for p in tmp_path.rglob("*")) == []
    assert not Path("/tmp/replay-abs-ESCAPED").exists()


def test_the_message_says_why_and_what_is_allowed() -> None:
    result = invoke("verify", "a" * 1000)
    assert result.exit_code == 2
    assert "1000 characters" in result.output and f"at most {MAX_LENGTH}" in result.output
    assert "A-Z a-z 0-9 . _ -" in result.output
    assert "contains '..'" in invoke("inspect", "../../ESCAPED").output
    assert "it is empty" in invoke("inspect", "").output


def test_a_name_that_is_not_utf8_is_refused_as_a_subprocess(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable.encode(), b"-c", b"from replay.cli import main; main()",
         b"inspect", b"bad\xff\xfename", b"--store", str(tmp_path).encode()],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    err = out.stderr.decode("utf-8")  # the message itself is clean UTF-8
    assert "is not a valid session id" in err and "Traceback" not in err
    assert b"\xff" not in out.stderr


def test_valid_ids_pass_including_sweep_trials_and_generated_names(tmp_path: Path) -> None:
    for name in ("SWEEP-t0001", "ma_cross-20250401-120000-2", "a", "x" * MAX_LENGTH, "v1.2_b"):
        assert check_session_id(name) == name
    with pytest.raises(InputError, match="not a valid session id"):
        check_session_id("x" * (MAX_LENGTH + 1))
    result = invoke("run", "--candles", "3000", "--session", "SWEEP-t0001", "--store",
                    str(tmp_path / "runs"), "--json", "--no-report")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["session_id"] == "SWEEP-t0001"


def test_generated_ids_from_hostile_card_names_are_valid() -> None:
    for text in ("../../evil", "\x1b[2Jname", "..", "-_-", "a" * 500, "ünïcode card"):
        stem = safe_stem(text)
        assert check_session_id(f"{stem}-20250401-120000-2") is not None
        assert ".." not in stem and "/" not in stem and len(stem) <= 96


def test_sessions_escapes_names_stored_before_the_rule(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    with EventStore(store) as es:
        es.create_stream("old\x1b[2Jname\nx", "backtest", meta={"status": "complete"})
        es.create_stream("[red]markup", "backtest", meta={"status": "complete"})
    result = invoke("sessions", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "\\x1b" in result.output and "[red]markup" in result.output
    listed = invoke("sessions", "--store", str(store), "--json")
    assert "\x1b" not in listed.output  # JSON escapes it
    assert json.loads(listed.output.splitlines()[0])["session"] == "old\x1b[2Jname\nx"
