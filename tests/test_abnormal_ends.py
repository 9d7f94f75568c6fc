"""Statuses tell the truth after abnormal ends (issue 12 §7): real processes, real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result

from engine.events import SessionStopped, decode
from eventstore import EventStore, LogCorruptError, StreamNotFound
from replay.cli import cli


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def listed(store: Path) -> dict[str, dict]:
    result = invoke("sessions", "--store", str(store), "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    return {row["session"]: row for row in rows}


def _committed(store: Path, session: str) -> bool:
    """Whether ``session`` has committed events: a cheap poll (the quick file check, not
    ``replay sessions``' page walk, which takes seconds on a growing log)."""
    if not (store / "data.mdb").exists():
        return False
    try:
        with EventStore(store, readonly=True, full_check=False) as es:
            return es.stream(session).last_seq > 0
    except (StreamNotFound, LogCorruptError):
        return False  # not created yet, or the file read mid-creation


def long_run(store: Path, session: str) -> subprocess.Popen[str]:
    """A backtest that runs for a while; returns once it has committed events."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from replay.cli import main; main()", "run", "--candles",
         "1500000", "--store", str(store), "--session", session, "--quiet"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _committed(store, session):
            return proc
    proc.kill()
    raise AssertionError("the run never committed events")


def test_sigterm_ends_a_backtest_like_ctrl_c(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    proc = long_run(store, "term")
    assert listed(store)["term"]["status"] == "running"  # a live writer holds the lock
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    row = listed(store)["term"]
    assert row["status"] == "interrupted" and row["events"] > 0
    with EventStore(store) as es:
        stream = es.stream("term")
        last = decode(next(iter(stream.read(stream.last_seq, stream.last_seq)))[1])
    assert isinstance(last, SessionStopped) and last.reason == "terminated"
    # It stopped between candles, so the whole log verifies, and says it is unfinished.
    verified = invoke("verify", "term", "--store", str(store))
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("INTERRUPTED term: not finished")


def test_a_backtest_killed_outright_shows_as_crashed(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    proc = long_run(store, "k9")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    row = listed(store)["k9"]
    assert row["status"] == "crashed" and row["events"] > 0
    verified = invoke("verify", "k9", "--store", str(store))
    assert verified.exit_code == 0, verified.output  # every committed batch is sound
    assert verified.output.startswith("CRASHED k9: not finished")
    table = invoke("sessions", "--store", str(store))
    assert "crashed" in table.output


HOLDER = """
import sys, time
from eventstore import EventStore, LogCorruptError, StreamNotFound
es = EventStore(sys.argv[1])
stream = es.create_stream("empty", "backtest", meta={"status": "running"})
writer = stream.writer(durable=False)
print("ready", flush=True)
time.sleep(120)
"""


def test_an_empty_leftover_is_crashed_and_verify_says_empty(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert listed(store)["empty"]["status"] == "running"
        live = invoke("verify", "empty", "--store", str(store))
        assert live.exit_code == 1 and live.output.startswith("EMPTY empty (running)")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert listed(store)["empty"]["status"] == "crashed"
    verified = invoke("verify", "empty", "--store", str(store))
    assert verified.exit_code == 1, verified.output
    assert verified.output.startswith("EMPTY empty (crashed): the session has no events")
    as_json = json.loads(invoke("verify", "empty", "--store", str(store), "--json").output)
    assert as_json["empty"] is True and as_json["status"] == "crashed"


def test_a_complete_session_still_verifies_ok(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    assert invoke("run", "--candles", "3000", "--session", "done", "--store", str(store),
                  "--quiet", "--no-report").exit_code == 0  # fmt: skip
    assert listed(store)["done"]["status"] == "complete"
    verified = invoke("verify", "done", "--store", str(store))
    assert verified.exit_code == 0 and verified.output.startswith("OK done:")
