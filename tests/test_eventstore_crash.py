"""Kill a durable writer with SIGKILL at random moments; the log must stay an exact prefix.

Each round a child process appends deterministic records (single appends and
``append_many`` groups) in durable mode to the same stream, printing every seq as its
call returns; the parent kills it after a random number of lines plus a random
delay. After every kill the stream must hold exactly records 1..n of what was sent,
with n >= every seq the child reported, n on a group boundary (a group is one
commit), nothing torn, a chain that verifies, and a write lock that is free again.

The parent keeps the store open throughout, which also covers LMDB's reader quirk:
a writer killed after writing its meta page but before publishing the txnid in
lock.mdb leaves other processes' readers one commit behind (the store republishes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from eventstore import EventStore

REPO = Path(__file__).resolve().parents[1]

CHILD = """
    import json, sys
    from eventstore import EventStore

    def payload(seq):
        return b"%08d|" % seq * (1 + seq % 13)

    path, groups = sys.argv[1], json.loads(sys.argv[2])
    with EventStore(path) as store:
        with store.stream("s").writer(durable=True) as w:
            for size in groups:
                first = w.last_seq + 1
                if size == 1:
                    seqs = [w.append(payload(first))]
                else:
                    seqs = list(w.append_many([payload(s) for s in range(first, first + size)]))
                sys.stdout.write("".join(f"{s}\\n" for s in seqs))
                sys.stdout.flush()
"""


def payload(seq: int) -> bytes:
    return b"%08d|" % seq * (1 + seq % 13)


def one_round(store: EventStore, path: Path, rng: random.Random) -> None:
    stream = store.stream("s")
    start = stream.last_seq
    groups = [rng.choice([1, 1, 1, 2, 5, 17]) for _ in range(rng.randint(1, 40))]
    boundaries = {start}
    for size in groups:
        boundaries.add(max(boundaries) + size)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(path), json.dumps(groups)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = start
    for _ in range(rng.randint(0, sum(groups))):
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    time.sleep(rng.random() * 0.004)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in (-signal.SIGKILL, 0), err
    for line in out.splitlines():  # reported between our last read and the kill
        acknowledged = int(line)

    last = stream.last_seq
    assert last >= acknowledged, "an append that had returned was lost"
    assert last in boundaries, f"seq {last} is inside an append_many group: torn"
    got = list(stream.read(start + 1))
    assert got == [(s, payload(s)) for s in range(start + 1, last + 1)]
    assert stream.verify_chain() == stream.fingerprint
    with stream.writer(durable=False):  # the dead child's lock is gone
        pass


def campaign(tmp_path: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    with EventStore(tmp_path) as store:
        store.create_stream("s", "live")
        for _ in range(rounds):
            one_round(store, tmp_path, rng)
        total = store.stream("s").last_seq
        assert [d for _, d in store.stream("s").read()] == [payload(s) for s in range(1, total + 1)]


def test_sigkill_during_durable_appends_leaves_an_exact_prefix(tmp_path: Path) -> None:
    campaign(tmp_path, rounds=25, seed=2)


@pytest.mark.soak
def test_sigkill_soak(tmp_path: Path) -> None:
    campaign(tmp_path, rounds=300, seed=20251122)
