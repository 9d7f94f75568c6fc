"""`replay sweep`: the search, its determinism across executors, resume, rerun, listing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventstore import EventStore
from replay.sweep.events import KIND
from replay.verify import verify_session
from tests.sweep_support import comparable, invoke, make_inputs, sweep_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_inputs(tmp_path_factory.mktemp("sweep-inputs"))


def test_grid_covers_the_declared_space_with_where_and_keeps_every_metric(inputs, tmp_path):
    card, data = inputs
    res = sweep_json(
        str(card),
        "--data",
        str(data),
        "--where",
        "fast<slow",
        "--store",
        str(tmp_path / "runs"),
        "--workers",
        "1",
        "--name",
        "g",
    )
    params = [t["params"] for t in res["trials"]]
    # product order, fast<slow drops fast=20 slow=20
    assert params == [{"fast": f, "slow": s} for f in (5, 10, 15, 20) for s in (20, 40) if f < s]
    assert [t["number"] for t in res["trials"]] == list(range(1, 8))
    assert [t["session_id"] for t in res["trials"]] == [f"g-t{n:04d}" for n in range(1, 8)]
    first = res["trials"][0]
    for metric in ("sharpe", "total_return", "trades", "max_drawdown", "sqn", "calmar"):
        assert metric in first["metrics"]
    assert len({t["fingerprint"] for t in res["trials"]}) == 7
    best = max(res["trials"], key=lambda t: (t["metrics"]["sharpe"], -t["number"]))
    assert res["best"]["number"] == best["number"]
    with EventStore(tmp_path / "runs") as store:  # trial logs are not kept by default
        assert [i.name for i in store.streams()] == ["g"]
        assert store.stream("g").kind == KIND


def test_one_worker_two_workers_same_trials_metrics_and_best(inputs, tmp_path):
    card, data = inputs
    for search in (
        ["--random", "4", "--seed", "11"],
        ["--optuna", "6", "--batch", "3", "--seed", "5"],
    ):
        runs = [
            sweep_json(
                str(card),
                "--data",
                str(data),
                "--grid",
                "fast=3:30:3",
                *search,
                "--store",
                str(tmp_path / f"w{w}-{search[0]}"),
                "--workers",
                str(w),
                "--name",
                "same",
            )
            for w in (1, 2)
        ]
        assert comparable(runs[0]) == comparable(runs[1])
        assert len(runs[0]["trials"]) == int(search[1])


def test_random_search_depends_on_its_seed(inputs, tmp_path):
    card, data = inputs
    a, b = (
        sweep_json(
            str(card),
            "--data",
            str(data),
            "--grid",
            "fast=2:40:1",
            "--random",
            "3",
            "--seed",
            str(seed),
            "--store",
            str(tmp_path / f"s{seed}"),
            "--workers",
            "1",
        )
        for seed in (1, 2)
    )
    assert [t["params"] for t in a["trials"]] != [t["params"] for t in b["trials"]]
    assert a["sweep"] != b["sweep"]  # the seed is part of the sweep's identity


def test_min_trades_excludes_and_ties_go_to_the_lowest_trial(inputs, tmp_path):
    card, data = inputs
    # slow == fast for every trial: the two SMAs never cross, so no trade and Sharpe 0 ties
    ties = "--grid fast=5,10 --grid slow=5,10 --where fast>=slow --where fast<=slow --workers 1"
    res = sweep_json(str(card), "--data", str(data), *ties.split(), "--store", str(tmp_path / "a"))
    assert [t["metrics"]["trades"] for t in res["trials"]] == [0, 0]
    assert res["best"]["number"] == 1
    strict = [*ties.split(), "--min-trades", "1", "--store", str(tmp_path / "b")]
    res = sweep_json(str(card), "--data", str(data), *strict)
    assert res["best"] is None


def test_rerun_rematerializes_the_trial_with_the_recorded_fingerprint(inputs, tmp_path):
    card, data = inputs
    store = tmp_path / "runs"
    res = sweep_json(
        str(card),
        "--data",
        str(data),
        "--store",
        str(store),
        "--workers",
        "1",
        "--name",
        "r",
        "--keep-logs",
        "best",
    )
    best = res["best"]
    with EventStore(store) as s:  # --keep-logs best: the best trial's session is there
        assert s.stream(best["session_id"]).fingerprint == best["fingerprint"]
    other = next(t for t in res["trials"] if t["number"] != best["number"])
    out = invoke("sweep", "rerun", "r", str(other["number"]), "--store", str(store), "--json")
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert got == {
        "session": other["session_id"],
        "fingerprint": other["fingerprint"],
        "recorded": other["fingerprint"],
        "same": True,
        "existed": False,
    }
    with EventStore(store) as s:
        assert verify_session(s, other["session_id"]).ok
    listed = invoke("sessions", "--store", str(store), "--json")
    ids = [json.loads(line)["id"] for line in listed.output.splitlines()]
    assert sorted(ids) == sorted([best["session_id"], other["session_id"]])  # never "r"
    sweeps = invoke("sweeps", "--store", str(store), "--json")
    rows = [json.loads(line) for line in sweeps.output.splitlines()]
    assert [(r["id"], r["done"], r["status"]) for r in rows] == [("r", 8, "complete")]
    show = invoke("sweep", "show", "r", "--store", str(store), "--json")
    assert json.loads(show.output)["best"] == best


def test_sessions_rm_refuses_a_sweep_and_sweeps_rm_takes_its_trials(inputs, tmp_path):
    card, data = inputs
    store = tmp_path / "runs"
    small = [str(card), "--data", str(data), "--store", str(store), *KEEP_ALL.split()]
    sweep_json(*small, "--name", "x")
    out = invoke("sessions", "rm", "x", "--store", str(store), "--yes")
    assert out.exit_code == 2 and "replay sweeps rm x" in out.output
    out = invoke("sessions", "prune", "--keep", "0", "--store", str(store), "--yes")
    assert out.exit_code == 0, out.output
    with EventStore(store) as s:
        assert [i.name for i in s.streams()] == ["x"]  # prune took the sessions only
    sweep_json(*small, "--name", "y")
    out = invoke("sweeps", "rm", "y", "--store", str(store), "--yes")
    assert out.exit_code == 0, out.output
    with EventStore(store) as s:
        assert [i.name for i in s.streams()] == ["x"]


KEEP_ALL = "--grid fast=5,10 --grid slow=20 --workers 1 --keep-logs all"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--grid", "fsat=5:50:5"], ["unknown parameter 'fsat'", "did you mean 'fast'"]),
        (["--grid", "fast=5:50"], ["MIN:MAX:STEP"]),
        (["--grid", "fast=50:5:5"], ["max >= min"]),
        (["--grid", "fast=1:5:1"], ["below the minimum"]),
        (["--grid", "fast=a,b"], ["not an int"]),
        (["--objective", "sharp"], ["not a summary metric", "did you mean 'sharpe'"]),
        (["--where", "fast<slwo"], ["unknown parameter 'slwo'", "did you mean 'slow'"]),
        (["--where", "fast>slow", "--grid", "fast=5", "--grid", "slow=20"], ["nothing to sweep"]),
        (["--where", "fast>slow", "--grid", "slow=30:40:10"], ["no combination satisfies"]),
        (["--random", "3", "--optuna", "3"], ["choose one"]),
    ],
)
def test_bad_sweeps_are_exit_2_with_a_suggestion(inputs, tmp_path, args, words):
    card, data = inputs
    out = invoke("sweep", str(card), "--data", str(data), "--store", str(tmp_path / "r"), *args)
    assert out.exit_code == 2, out.output
    for word in words:
        assert word in out.output
    assert "Traceback" not in out.output


def _sweep_cmd(card: Path, data: Path, store: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from replay.cli import main; main()",
        "sweep",
        str(card),
        "--data",
        str(data),
        "--grid",
        "fast=3:36:3",
        "--store",
        str(store),
        "--workers",
        "1",
        "--name",
        "k",
        "--json",
    ]


def test_a_sweep_killed_with_sigkill_resumes_to_the_same_result(tmp_path):
    card, data = make_inputs(tmp_path / "in", candles=8000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _sweep_cmd(card, data, killed), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    recorded = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if (killed / "data.mdb").exists():
            with EventStore(killed) as s:
                recorded = s.stream("k").last_seq if "k" in s else 0
            if recorded >= 4:  # started + 3 trials
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    listed = invoke("sweeps", "--store", str(killed), "--json")
    row = json.loads(listed.output.splitlines()[0])
    assert row["status"] == "crashed" and 3 <= row["done"] < 24
    resumed = subprocess.run(
        _sweep_cmd(card, data, killed), env=env, capture_output=True, text=True, check=True
    )
    whole = subprocess.run(
        _sweep_cmd(card, data, tmp_path / "whole"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    a, b = json.loads(resumed.stdout), json.loads(whole.stdout)
    assert comparable(a) == comparable(b) and len(a["trials"]) == 24
    with EventStore(killed) as s:  # each trial ran once: one event each, plus start and end
        assert s.stream("k").last_seq == 1 + 24 + 1


def test_ray_runs_the_same_trials_as_the_local_pool(inputs, tmp_path):
    """A real local Ray instance (2 CPUs): the same trials, metrics and best as 1 worker;
    with --keep-logs all every trial's log is shipped back into the driver's store."""
    ray = pytest.importorskip("ray")
    card, data = inputs
    args = [
        str(card),
        "--data",
        str(data),
        "--optuna",
        "4",
        "--batch",
        "2",
        "--seed",
        "3",
        "--grid",
        "fast=3:30:3",
        "--name",
        "ray",
    ]
    local = sweep_json(*args, "--store", str(tmp_path / "local"), "--workers", "1")
    try:
        on_ray = sweep_json(
            *args, "--store", str(tmp_path / "ray"), "--workers", "2", "--ray", "auto"
        )
        kept = sweep_json(
            *args,
            "--store",
            str(tmp_path / "kept"),
            "--workers",
            "2",
            "--ray",
            "auto",
            "--keep-logs",
            "all",
        )
    finally:
        ray.shutdown()
    assert comparable(on_ray) == comparable(local) == comparable(kept)
    with EventStore(tmp_path / "kept") as s:
        ran = [t for t in kept["trials"] if not t.get("skipped")]
        assert sorted(i.name for i in s.streams() if i.kind != KIND) == sorted(
            t["session_id"] for t in ran
        )
        for t in ran:
            assert s.stream(t["session_id"]).fingerprint == t["fingerprint"]
            assert s.stream(t["session_id"]).meta["status"] == "complete"
            assert verify_session(s, t["session_id"]).ok


def test_walk_forward_tests_each_fold_on_the_next_window_warmed_without_trading(tmp_path):
    from engine.events import CandleClosed, Fill
    from replay.verify import read_session

    card, data = make_inputs(tmp_path / "in", candles=4000, seed=5)
    store = tmp_path / "runs"
    grid = "--grid fast=3,6 --grid slow=40,60 --workers 1"
    wf = [str(card), "--data", str(data), *grid.split()]
    res = sweep_json(
        *wf, "--walk-forward", "3", "--store", str(store), "--name", "wf", "--keep-logs", "all"
    )
    folds = res["walk_forward"]
    assert [(f["fold"], f["train"], f["test"]) for f in folds] == [
        (1, [0, 1000], [1000, 2000]),
        (2, [0, 2000], [2000, 3000]),
        (3, [0, 3000], [3000, 4000]),
    ]
    assert len(res["trials"]) == 3 * 4 + 3 and res["trials_planned"] == 15
    with EventStore(store) as s:
        for f in folds:
            test = next(t for t in res["trials"] if t["fold"] == f["fold"] and t["test"])
            assert test["params"] == f["params"]
            assert test["metrics"]["candles"] == 1000  # warm-up candles are not marked
            events = [e for _, e in read_session(s, test["session_id"])]
            candles = [e for e in events if isinstance(e, CandleClosed)]
            warm = [c for c in candles if c.backfill]
            assert len(warm) == 1000 and len(candles) == 2000  # the part before, as backfill
            first_test_open = next(c for c in candles if not c.backfill).open_ms
            fills = [e for e in events if isinstance(e, Fill)]
            assert fills and min(x.ts for x in fills) >= first_test_open
            assert verify_session(s, test["session_id"]).ok
    rolling = sweep_json(*wf, "--walk-forward", "3", "--rolling", "--store", str(tmp_path / "r"))
    assert [f["train"] for f in rolling["walk_forward"]] == [[0, 1000], [1000, 2000], [2000, 3000]]
    assert rolling["oos_equity"][0] == 1.0 and len(rolling["oos_equity"]) > 3


def test_the_sweep_report_has_the_heatmap_sensitivity_trials_and_readings(inputs, tmp_path):
    card, data = inputs
    res = sweep_json(
        str(card),
        "--data",
        str(data),
        "--store",
        str(tmp_path / "runs"),
        "--workers",
        "1",
        "--name",
        "rep",
    )
    page = Path(res["report"]).read_text()
    assert "<script src=" not in page and "plotly" in page  # plotly inlined: self-contained
    for div in (
        "id='heatmap'",
        "id='sensitivity-fast'",
        "id='sensitivity-slow'",
        "id='trials'",
        "id='dsr'",
        "id='pbo'",
    ):
        assert div in page
    assert page.count("<tr><td>") == 8  # every trial a row
    assert "DSR " in page and "PBO " in page
    out = invoke("sweeps", "rm", "rep", "--store", str(tmp_path / "runs"), "--yes")
    assert out.exit_code == 0 and not Path(res["report"]).exists()


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def test_pool_workers_end_when_the_sweep_is_killed(tmp_path):
    card, data = make_inputs(tmp_path / "in", candles=20000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = _sweep_cmd(card, data, tmp_path / "runs")
    cmd[cmd.index("--workers") + 1] = "2"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 3 and proc.poll() is None:
        workers = _descendants(proc.pid)  # the forkserver and its two workers (and more)
        time.sleep(0.2)
    assert len(workers) >= 3, "the pool did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.2)
    alive = [p for p in workers if Path(f"/proc/{p}").exists()]
    for p in alive:  # do not leave them behind when the test fails
        os.kill(p, signal.SIGKILL)
    assert not alive


def test_trial_fingerprints_without_logs_equal_the_kept_logs(inputs, tmp_path):
    """A trial not kept runs into a memory store: the fingerprint of the real log."""
    card, data = inputs
    args = [str(card), "--data", str(data), "--workers", "1", "--name", "fp"]
    none = sweep_json(*args, "--store", str(tmp_path / "none"))
    kept = sweep_json(*args, "--store", str(tmp_path / "all"), "--keep-logs", "all")
    assert comparable(none) == comparable(kept)
    with EventStore(tmp_path / "all") as s:
        for t in kept["trials"]:
            assert s.stream(t["session_id"]).fingerprint == t["fingerprint"]
            assert s.stream(t["session_id"]).meta["status"] == "complete"


@pytest.mark.parametrize("budget", [10**9, 2_000_000, 0])  # all, the short last chunk, none
def test_kept_candle_bytes_equal_fresh_ones_across_chunks(budget):
    """A worker's kept encoding gives the bytes of a fresh one, chunk after chunk, twice,
    whatever its budget keeps."""
    from adapters.historical import generate
    from adapters.historical.bulk import _CHUNK, KeptEncodedCandles, encode_candles
    from engine.instrument import BTCUSDT, Instrument

    series = generate(seed=5, n=_CHUNK + 5000, instrument=Instrument(BTCUSDT))
    n = len(series)
    fresh = encode_candles(series).rows(0, n)
    kept = KeptEncodedCandles(series, budget=budget)
    for _ in range(2):  # the second pass reads the kept chunks
        assert kept.rows(0, n) == fresh
        assert [kept.row(i) for i in (n - 1, 0, _CHUNK, _CHUNK - 1)] == [
            fresh[i] for i in (n - 1, 0, _CHUNK, _CHUNK - 1)
        ]
    assert len(kept._kept) == {10**9: 2, 2_000_000: 1, 0: 0}[budget]
