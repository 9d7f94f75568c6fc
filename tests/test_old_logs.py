"""Old logs (issue 11 section 8): a log written by another engine version says so.

A real backtest session is written, then copied record by record into a new stream of the
same store with its ``SessionStarted.version`` rewritten (and, for a divergence, one
derived event left out). ``replay verify`` and the daemon's resume must then name both
versions instead of reporting a bare divergence.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result

from engine.events import IntentEmitted, SessionStarted, decode, encode
from eventstore import EventStore
from replay import __version__
from replay.cli import cli
from replay.daemon import Daemon, DaemonOptions
from replay.verify import verify_session, version_note
from tests.cards import ma_cross_card

OLD = "0.0.1-old"
NOTE = f"written by engine version {OLD}; this is {__version__}"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("old")
    card = ma_cross_card(folder)
    out = invoke("run", str(card), "--store", str(folder), "--session", "new", "--candles", "3000")
    assert out.exit_code == 0, out.output
    return folder


def _copy(folder: Path, name: str, version: str, drop_first_intent: bool) -> None:
    with EventStore(folder) as s:
        records = [bytes(raw) for _, raw in s.stream("new").read()]
        first = decode(records[0])
        assert isinstance(first, SessionStarted) and first.version == __version__
        records[0] = encode(msgspec.structs.replace(first, version=version))
        if drop_first_intent:
            at = next(i for i, r in enumerate(records) if isinstance(decode(r), IntentEmitted))
            del records[at]
        copy = s.create_stream(name, kind="backtest", meta={"status": "complete"})
        with copy.writer(durable=False) as w:
            w.append_many(records)


def test_every_session_records_the_engine_version(store: Path) -> None:
    with EventStore(store) as s:
        first = decode(next(iter(s.stream("new").read(1, 1)))[1])
        result = verify_session(s, "new")
    assert isinstance(first, SessionStarted) and first.version == __version__
    assert result.ok and result.written_by == __version__ and result.version_note == ""


def test_verify_of_an_old_log_that_diverges_names_both_versions(store: Path) -> None:
    _copy(store, "old-diverged", OLD, drop_first_intent=True)
    out = invoke("verify", "old-diverged", "--store", str(store))
    assert out.exit_code == 1
    first = out.output.splitlines()[0]
    assert first.startswith("DIVERGED old-diverged at seq ") and first.endswith(f"({NOTE})")
    data = json.loads(invoke("verify", "old-diverged", "--store", str(store), "--json").output)
    assert data["ok"] is False
    assert data["written_by"] == OLD and data["engine_version"] == __version__
    assert data["version_note"] == NOTE and NOTE in data["divergence"]["reason"]


def test_a_divergence_of_this_versions_log_has_no_version_note(store: Path) -> None:
    _copy(store, "same-diverged", __version__, drop_first_intent=True)
    out = invoke("verify", "same-diverged", "--store", str(store))
    assert out.exit_code == 1 and "DIVERGED" in out.output
    assert "written by engine version" not in out.output


def test_verify_of_an_old_log_that_still_rederives_says_ok_and_which_version(
    store: Path,
) -> None:
    _copy(store, "old-ok", OLD, drop_first_intent=False)
    out = invoke("verify", "old-ok", "--store", str(store))
    assert out.exit_code == 0 and out.output.startswith("OK old-ok: ")
    assert out.output.rstrip().endswith(f"({NOTE})")


def test_resume_of_an_old_log_says_which_versions(
    store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _copy(store, "old-resume", OLD, drop_first_intent=False)
    daemon = Daemon(DaemonOptions(card=store / "ma_test.yaml", store=store, session="old-resume"))
    daemon.store = EventStore(store)
    try:
        with caplog.at_level(logging.WARNING, logger="replay.daemon"):
            daemon._resume()
    finally:
        for writer in (daemon.writer, daemon.snapshot_writer):
            if writer is not None:
                writer.close()
        daemon.store.close()
    assert any(NOTE in r.getMessage() for r in caplog.records), caplog.text


def test_version_note() -> None:
    assert version_note(__version__) == ""
    assert version_note("") == f"written by engine version (none recorded); this is {__version__}"
