"""A damaged store is a message and exit 3, never a process killed by a signal (issue 12 §1-2).

The exact cases of the issue, on a real store written by ``replay run``: another process
keeps the environment open (which used to skip every check), then the data file is
truncated (SIGBUS before) or one tree page is zeroed in place (SIGABRT, liblmdb's
"Assertion 'IS_LEAF(mp)' failed", before).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = 4096
HOLD = (
    "import lmdb, sys, time; env = lmdb.open(sys.argv[1], max_dbs=16, readonly=True); "
    "print('holding', flush=True); time.sleep(120)"
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from replay.cli import main; main()", *args],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("pristine") / "store"
    done = replay("run", "--store", str(store), "--session", "B", "--no-report", "--quiet")
    assert done.returncode == 0, done.stderr
    return store


@pytest.fixture
def held(pristine: Path, tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the store, kept open by another process for the whole test."""
    store = tmp_path / "S"
    shutil.copytree(pristine, store)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    yield store
    proc.kill()
    proc.communicate()


def tree_page(data: Path, flag: int) -> int:
    """A page in the middle of the file whose header says it is a leaf (2) or branch (1)."""
    raw = data.read_bytes()
    pages = [
        n
        for n in range(2, len(raw) // PAGE)
        if struct.unpack_from("=H", raw, n * PAGE + 10)[0] & flag
    ]
    return pages[len(pages) // 2]


def assert_damage_reported(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])  # not -7/-6, not 1
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert "is corrupt" in done.stderr
    for word in words:
        assert word in done.stderr


def test_truncated_store_held_open_elsewhere_is_exit_3_not_sigbus(held: Path) -> None:
    data = held / "data.mdb"
    os.truncate(data, data.stat().st_size // 2)
    done = replay("sessions", "--store", str(held))
    assert_damage_reported(done, str(data), "(truncated)")


def test_zeroed_leaf_page_held_open_elsewhere_is_exit_3_not_sigabrt(held: Path) -> None:
    data = held / "data.mdb"
    page = tree_page(data, 2)
    with data.open("r+b") as f:
        f.seek(page * PAGE)
        f.write(bytes(PAGE))
    done = replay("verify", "B", "--store", str(held))
    assert_damage_reported(done, f"page {page}")


def test_zeroed_branch_page_with_stamp_put_back_is_exit_3(pristine: Path, tmp_path: Path) -> None:
    """In-place damage that restores the mtime after a commit changed the meta pages:
    the trusted stamp includes them, so size and mtime alone never vouch for the file."""
    store = tmp_path / "S"
    shutil.copytree(pristine, store)
    assert replay("sessions", "--store", str(store)).returncode == 0  # now trusted
    data = store / "data.mdb"
    st = data.stat()
    page = tree_page(data, 1)
    with data.open("r+b") as f:
        f.seek(page * PAGE)
        f.write(bytes(PAGE))
        f.seek(PAGE + 16 + 24 + 2 * 48 + 8)  # meta page 1's txnid: as a commit would
        f.write(struct.pack("=Q", 1))
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert data.stat().st_mtime_ns == st.st_mtime_ns and data.stat().st_ino == st.st_ino
    done = replay("sessions", "--store", str(store))
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_sound_store_held_open_elsewhere_still_reads(held: Path) -> None:
    done = replay("verify", "B", "--store", str(held))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OK" in done.stdout


TRUNCATE_UNDER_OPEN_STORE = """
import os, sys
from eventstore import EventStore, LogCorruptError
store = EventStore(sys.argv[1])
stream = store.stream("B")
assert sum(1 for _ in stream.read()) == stream.last_seq
data = os.path.join(sys.argv[1], "data.mdb")
os.truncate(data, os.path.getsize(data) // 2)
try:
    sum(1 for _ in stream.read())
except LogCorruptError as exc:
    print("corrupt:", exc)
"""


def test_store_truncated_while_open_here_is_log_corrupt_at_the_next_read(
    pristine: Path, tmp_path: Path
) -> None:
    """Truncated after this process opened (mapped) it: the check before every
    transaction turns what was a SIGBUS at the next read into LogCorruptError."""
    store = tmp_path / "S"
    shutil.copytree(pristine, store)
    done = subprocess.run(
        [sys.executable, "-c", TRUNCATE_UNDER_OPEN_STORE, str(store)],
        env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "corrupt:" in done.stdout and "(truncated)" in done.stdout


def test_a_page_walk_killed_by_a_signal_is_reported_as_damage(tmp_path: Path) -> None:
    from eventstore.walk import walk_problems

    sigbus = ("-c", "import os, signal, sys; print('mdb.c: page gone', file=sys.stderr, "
              "flush=True); os.kill(os.getpid(), signal.SIGBUS)")  # fmt: skip
    assert walk_problems(tmp_path, sigbus) == [
        "reading its pages kills liblmdb (SIGBUS) mdb.c: page gone"
    ]
    garbled = ("-c", "print('not json')")
    assert walk_problems(tmp_path, garbled)[0].startswith("the page walk failed (exit 0)")
