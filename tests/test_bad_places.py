"""Stores and venues in the wrong place are messages with exit 2, never tracebacks
(issue 12 §8): a read-only mount (reading commands work there), /dev/null as a store, a
venue URL that is no URL, and a 1-minute card against a venue serving 5-minute bars."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventstore import EventStore
from replay.cli import cli
from tests.cards import ma_cross_card
from tools.bybit_emulator import EmulatorHandle

REPO = Path(__file__).resolve().parents[1]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


class Done:
    """A finished ``replay`` subprocess, shaped like click's Result for ``refused``."""

    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.exit_code = proc.returncode
        self.output = proc.stdout + proc.stderr


def replay(*args: str) -> Done:
    """The CLI in its own process: it maps the store, and the mount must come off after."""
    proc = subprocess.run(
        [sys.executable, "-c", "from replay.cli import main; main()", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    return Done(proc)


def refused(result: Result | Done, *words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[Path]:
    """Two sessions in a store, seen through a read-only bind mount."""
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    for name in ("A", "B"):
        done = invoke("run", "--store", str(src / "s"), "--session", name, "-q",
                      "--candles", "1500")  # fmt: skip
        assert done.exit_code == 0, done.output
    mnt.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(src), str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.decode().strip()}")
        assert not os.access(mnt / "s", os.W_OK) or _really_read_only(mnt / "s")
        yield mnt / "s"
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def _really_read_only(path: Path) -> bool:
    try:
        (path / "probe").write_text("x")
    except OSError:
        return True
    return False


def test_reading_commands_work_on_a_read_only_store(read_only_store: Path, tmp_path: Path) -> None:
    store = str(read_only_store)
    listed = replay("sessions", "--store", store)
    assert listed.exit_code == 0 and "A" in listed.output and "complete" in listed.output
    assert replay("verify", "A", "--store", store).exit_code == 0
    assert replay("inspect", "A", "--store", store, "--limit", "3").exit_code == 0
    assert replay("inspect", "A", "--store", store, "--at", "50").exit_code == 0
    assert replay("diff", "A", "B", "--store", store).exit_code == 0
    out = tmp_path / "report"
    assert replay("report", "A", "--store", store, "--out", str(out)).exit_code == 0
    assert (out / "report.html").exists()
    # Writing is refused with the reason, and nothing in the store changed.
    refused(replay("run", "--store", store, "--session", "C", "-q"), "read-only file system")
    refused(replay("sessions", "rm", "A", "--yes", "--store", store), "read-only file system")
    refused(replay("report", "A", "--store", store), "Read-only file system")
    with EventStore(read_only_store, readonly=True) as es:
        assert [s.name for s in es.streams()] == ["A", "B"]


@pytest.mark.parametrize("command", [("run", "-q"), ("sessions",), ("verify", "A")])
def test_dev_null_is_not_a_store(command: tuple[str, ...]) -> None:
    refused(invoke(*command, "--store", "/dev/null"), "/dev/null is not a directory")


@pytest.mark.parametrize(
    ("url", "word"),
    [("notaurl", "expected an http"), ("ftp://127.0.0.1:1", "expected an http"),
     ("http://127.0.0.1:99999", "port")],
)  # fmt: skip
def test_a_venue_url_that_is_no_url(tmp_path: Path, url: str, word: str) -> None:
    card = ma_cross_card(tmp_path)
    refused(
        invoke(
            "demo",
            str(card),
            "--venue",
            "emulator",
            "--emulator-url",
            url,
            "--store",
            str(tmp_path / "runs"),
            "--session",
            "u1",
        ),
        word,
    )


def test_a_1m_card_against_a_5m_venue_is_refused_and_leaves_no_session(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emulator = emulator_factory(history=50)  # the emulator replays 5-minute bars
    card = ma_cross_card(tmp_path, timeframe="1m")
    store = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-c", "from replay.cli import main; main()", "demo", str(card),
         "--venue", "emulator", "--emulator-url", emulator.rest, "--store", str(store),
         "--session", "m1", "--startup-timeout", "10"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "BYBIT_API_KEY": emulator.api_key,
             "BYBIT_API_SECRET": emulator.api_secret},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "refused the card's 1m candles" in done.stderr and "'5'" in done.stderr
    with EventStore(store) as es:
        assert [s.name for s in es.streams()] == []  # nothing half-started


def test_a_wrong_secret_is_a_message_at_once_and_leaves_no_session(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emulator = emulator_factory(history=50)
    card = ma_cross_card(tmp_path, timeframe="5m")
    store = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-c", "from replay.cli import main; main()", "demo", str(card),
         "--venue", "emulator", "--emulator-url", emulator.rest, "--store", str(store),
         "--session", "w1", "--startup-timeout", "60"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "BYBIT_API_KEY": emulator.api_key,
             "BYBIT_API_SECRET": "not-the-secret"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "refused the API key" in done.stderr
    assert "not-the-secret" not in done.stderr  # never the secret itself
    with EventStore(store) as es:
        assert [s.name for s in es.streams()] == []
