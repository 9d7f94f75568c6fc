"""The full page walk of a store, run in a child process: ``python -m eventstore.walk DIR``.

A damaged page can kill the process that maps it (SIGBUS for a page past the end of a
truncated file, SIGABRT for liblmdb's assertions on a zeroed page). So the walk runs in
a child, and the parent (``walk_problems``) turns the child's death into a problem
string: the parent itself maps the file only once a child has read every page of it.

The child holds an LMDB read transaction for the whole walk, so a writer in another
process cannot reuse the pages being walked (a live store is checked as it stands, not
as a torn mix of two commits). It then runs py-lmdb's offline verifier (page headers,
key order, node bounds, free list) and reads every record of every named database
through liblmdb itself. It prints a JSON list of problems; empty means sound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import lmdb

#: the walk reads ~1M records/s; a child stuck longer than this is itself a problem.
TIMEOUT_S: Final = 600.0


def _open(path: Path) -> lmdb.Environment:
    try:  # with a lock file: our reader slot pins the pages a writer may not reuse
        return lmdb.open(str(path), readonly=True, max_dbs=16, max_readers=256)
    except lmdb.Error:  # a read-only mount (no writer can be there): without the lock
        return lmdb.open(str(path), readonly=True, max_dbs=16, lock=False)


def _problems(path: Path) -> list[str]:
    from lmdb import verify

    try:
        env = _open(path)
    except lmdb.Error as exc:
        return [f"liblmdb cannot open it: {exc}"]
    with env.begin(buffers=True) as txn:
        try:
            problems = list(verify.verify(os.fspath(path), subdir=True))
        except (verify.VerifyError, OSError) as exc:
            problems = [str(exc)]
        if problems:
            return problems
        try:
            names = [bytes(k) for k, _ in txn.cursor()]
            for name in names:
                db = env.open_db(name, txn=txn, create=False)
                for _key, _value in txn.cursor(db=db):
                    pass
        except lmdb.Error as exc:
            return [f"liblmdb fails to read it: {exc}"]
    env.close()
    return []


def run_child(args: Sequence[str]) -> subprocess.CompletedProcess[str] | None:
    """Run ``python ARGS`` with this process's import path; None when it outlived
    ``TIMEOUT_S``. A child killed by a signal has a negative ``returncode``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


def walk_problems(path: Path, child: Sequence[str] = ("-m", "eventstore.walk")) -> list[str]:
    """The child's verdict on ``path``; its death by a signal is a problem too.
    (``child``: the interpreter's arguments before the path, for tests.)"""
    proc = run_child([*child, os.fspath(path)])
    if proc is None:
        return [f"the page walk did not finish within {TIMEOUT_S:.0f} s"]
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        detail = proc.stderr.strip().splitlines()[-1:] or [""]
        return [f"reading its pages kills liblmdb ({name}) {detail[0]}".rstrip()]
    try:
        problems = json.loads(proc.stdout)
    except ValueError:
        problems = None
    if proc.returncode != 0 or not isinstance(problems, list):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"the page walk failed (exit {proc.returncode}): {tail}"]
    return [str(p) for p in problems]


def main() -> None:
    sys.stdout.write(json.dumps(_problems(Path(sys.argv[1]))) + "\n")


if __name__ == "__main__":
    main()
