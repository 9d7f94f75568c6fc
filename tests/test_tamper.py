"""Issue 12 §3: a record rewritten behind the store's back is seen by every reader.

A real `replay run` writes the sessions; the tampering goes straight through the
lmdb API (re-encoding the msgspec ``Fill``), as someone editing the file would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventstore import EventStore, LogCorruptError
from eventstore.checked import CACHE_FILE, check_stream
from eventstore.stream import Stream
from replay.cli import cli
from replay.errors import EXIT_CORRUPT


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run(store: Path, session: str) -> None:
    result = invoke("run", "--store", str(store), "--candles", "3000", "--session", session)
    assert result.exit_code == 0, result.output


_ZERO_FEES = """
import sys, lmdb, msgspec
from engine.events import Fill, decode, encode
from eventstore.layout import RECORDS_DB, STREAMS_DB, decode_record, pack_key
env = lmdb.open(sys.argv[1], max_dbs=8, subdir=True)
n = 0
with env.begin(write=True) as txn:
    streams = env.open_db(STREAMS_DB, txn=txn)
    records = env.open_db(RECORDS_DB, txn=txn)
    record = decode_record(txn.get(sys.argv[2].encode(), db=streams))
    for seq in range(1, record.last_seq + 1):
        key = pack_key(record.id, seq)
        event = decode(txn.get(key, db=records))
        if isinstance(event, Fill) and event.fee != 0:
            txn.put(key, encode(msgspec.structs.replace(event, fee=0)), db=records)
            n += 1
print(n)
"""


def zero_every_fee(store: Path, session: str) -> int:
    """Another process rewrites every Fill of ``session`` with fee 0 through the lmdb API
    (this one keeps the store open, as the CLI commands leave it); the count rewritten."""
    out = subprocess.run(
        [sys.executable, "-c", _ZERO_FEES, str(store), session],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    return int(out.stdout)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the streams whose chain was actually re-hashed (the real method, counted)."""
    calls: list[str] = []
    real = Stream.verify_chain

    def counted(self: Stream) -> str:
        calls.append(self.name)
        return real(self)

    monkeypatch.setattr(Stream, "verify_chain", counted)
    yield calls


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sessions from `replay run`; every fee of `victim` then zeroed through lmdb."""
    path = tmp_path_factory.mktemp("runs")
    run(path, "victim")
    run(path, "clean")
    fees = json.loads(invoke("report", "victim", "--store", str(path), "--json").output)
    assert fees["fees_paid"] > 0  # there was something to hide
    assert zero_every_fee(path, "victim") > 0
    return path


def test_report_refuses_a_tampered_session(store: Path) -> None:
    result = invoke("report", "victim", "--store", str(store), "--json")
    assert result.exit_code == EXIT_CORRUPT == 3
    assert "'victim'" in result.output and "do not hash" in result.output
    assert "Traceback" not in result.output
    ok = invoke("report", "clean", "--store", str(store), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["fees_paid"] > 0


@pytest.mark.parametrize("extra", [(), ("--at", "10"), ("--type", "Fill")])
def test_inspect_refuses_a_tampered_session(store: Path, extra: tuple[str, ...]) -> None:
    result = invoke("inspect", "victim", "--store", str(store), *extra)
    assert result.exit_code == EXIT_CORRUPT, result.output
    assert "is corrupt" in result.output and "Traceback" not in result.output
    assert invoke("inspect", "clean", "--store", str(store), *extra).exit_code == 0


def test_sessions_marks_the_tampered_row_and_says_so(store: Path) -> None:
    result = invoke("sessions", "--store", str(store), "--json")
    assert result.exit_code == EXIT_CORRUPT
    lines = result.output.splitlines()
    rows = {r["session"]: r for r in map(json.loads, (ln for ln in lines if ln.startswith("{")))}
    assert rows["victim"]["status"] == "TAMPERED"
    assert rows["clean"]["status"] == "complete"
    assert any("WARNING" in ln and "'victim'" in ln for ln in lines)
    table = invoke("sessions", "--store", str(store))
    assert "TAMPERED" in table.output and table.exit_code == EXIT_CORRUPT


def test_an_untouched_store_is_hashed_once_then_served_from_the_cache(
    store: Path, verifications: list[str]
) -> None:
    (store / CACHE_FILE).unlink(missing_ok=True)
    for _ in range(3):
        assert invoke("report", "clean", "--store", str(store)).exit_code == 0
    assert verifications == ["clean"]
    with EventStore(store) as es:
        assert check_stream(es, "clean").cached
        with pytest.raises(LogCorruptError):  # a failure is never remembered as a pass
            check_stream(es, "victim")
        with pytest.raises(LogCorruptError):
            check_stream(es, "victim")
    assert verifications == ["clean", "victim", "victim"]


def test_tampering_after_a_cached_check_is_still_caught(
    tmp_path: Path, verifications: list[str]
) -> None:
    store = tmp_path / "runs"
    run(store, "s")
    with EventStore(store) as es:
        check_stream(es, "s")
        assert check_stream(es, "s").cached
    assert zero_every_fee(store, "s") > 0
    result = invoke("report", "s", "--store", str(store))
    assert result.exit_code == EXIT_CORRUPT, result.output


def test_any_commit_invalidates_the_cache(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    run(store, "s")
    with EventStore(store) as es:
        first = check_stream(es, "s")
        assert check_stream(es, "s").cached
        es.stream("s").set_meta("note", "x")
        again = check_stream(es, "s")
        assert not again.cached and again.fingerprint == first.fingerprint


def test_diff_refuses_a_tampered_session(store: Path) -> None:
    result = invoke("diff", "clean", "victim", "--store", str(store))
    assert result.exit_code == EXIT_CORRUPT and "'victim'" in result.output
