"""The session core: one fold shared by backtest, verify, inspect and the daemon's resume,
and a resume that refuses a log its engine no longer reproduces."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

import engine.core
import replay.core
from adapters.historical import generate
from engine.events import Checkpoint, SessionStarted, SessionStopped, decode, encode
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument
from eventstore import EventStore
from projections.reconcile import ReconcileView
from replay import snapshots
from replay.cards import load_card
from replay.core import refold
from replay.daemon import Daemon, DaemonOptions
from replay.errors import InputError
from replay.inspection import state_at
from replay.resume import ResumeRefused
from replay.session import run_backtest
from replay.verify import verify_session
from tests.cards import ma_cross_card

ROOT = Path(__file__).resolve().parents[1]
CANDLES = 25_000  # two checkpoints (every 10,000 folded inputs)


def _backtest(folder: Path, *, seed: int, n: int) -> tuple[Path, Path]:
    """A finished backtest session "s" in a store: (store dir, card path)."""
    card = ma_cross_card(folder, fast=5, slow=20)
    instrument = Instrument(BTCUSDT)
    series = generate(seed=seed, n=n, instrument=instrument)
    store = folder / "store"
    with EventStore(store) as es:
        run_backtest(
            load_card(card),
            series.events(),
            instrument,
            es,
            session_id="s",
            initial_balance=10_000 * MONEY_SCALE,
            first_open_ms=int(series.open_ms[0]),
        )
    return store, card


@pytest.fixture
def session(tmp_path: Path) -> tuple[Path, Path]:
    return _backtest(tmp_path, seed=3, n=CANDLES)


def _checkpoint_seqs(store: Path, name: str = "s") -> list[int]:
    with EventStore(store, readonly=True) as es:
        return [seq for seq, raw in es.stream(name).read() if type(decode(raw)) is Checkpoint]


def _resume(store: Path, card: Path, **opts: object) -> Daemon:
    daemon = Daemon(DaemonOptions(card=card, store=store, session="s", **opts))  # type: ignore[arg-type]
    daemon.store = EventStore(store)
    try:
        daemon._resume()
    except BaseException:
        daemon.store.close()
        raise
    return daemon


def _close(daemon: Daemon) -> None:
    for writer in (daemon.writer, daemon.snapshot_writer):
        if writer is not None:
            writer.close()
    assert daemon.store is not None
    daemon.store.close()


def _changed_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule change: this engine's checkpoints carry another hash than the log's."""
    real = engine.core.Checkpoint

    def changed(ts: int, events: int, state_hash: str) -> Checkpoint:
        return real(ts, events, state_hash[::-1])

    monkeypatch.setattr(engine.core, "Checkpoint", changed)


# ------------------------------------------------------------ resume verifies


CHANGED_ENGINE = """
import engine.core
real = engine.core.state_hash
engine.core.state_hash = lambda state: real(state)[::-1]  # a changed rule
from replay.cli import main
main()
"""


def test_a_daemon_resumed_under_a_changed_engine_refuses_naming_the_first_differing_seq(
    session: tuple[Path, Path],
) -> None:
    store, card = session
    first = _checkpoint_seqs(store)[0]
    with EventStore(store, readonly=True) as es:
        before = es.stream("s").last_seq
    # A real `replay demo` process whose engine hashes state differently. It must refuse
    # before it connects anywhere: the emulator URL points at nothing.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHANGED_ENGINE,
            "demo",
            str(card),
            "--store",
            str(store),
            "--session",
            "s",
            "--venue",
            "emulator",
            "--emulator-url",
            "http://127.0.0.1:9",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BYBIT_API_KEY": "k"}
        | {"BYBIT_API_SECRET": "s"},
    )
    assert proc.returncode == 2, proc.stderr
    assert f"no longer verifies under this engine: at seq {first}: derived event differs" in (
        proc.stderr
    )
    assert "--fork-on-divergence" in proc.stderr and "Traceback" not in proc.stderr
    with EventStore(store, readonly=True) as es:
        assert es.stream("s").last_seq == before  # nothing appended to the refused log


def test_the_unchanged_engine_resumes_the_same_log(session: tuple[Path, Path]) -> None:
    store, card = session
    daemon = _resume(store, card)
    try:
        assert daemon.last_seq == EventStore(store, readonly=True).stream("s").last_seq
        assert daemon.state is not None and daemon.state.bars == CANDLES
    finally:
        _close(daemon)


def test_fork_on_divergence_goes_on_as_a_new_session_that_verifies(
    session: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, card = session
    _changed_checkpoints(monkeypatch)
    first = _checkpoint_seqs(store)[0]
    with pytest.raises(ResumeRefused, match=f"at seq {first}"):
        _resume(store, card)
    daemon = _resume(store, card, fork_on_divergence="s-fork")
    try:
        assert daemon.opts.session == "s-fork"
        assert daemon.state is not None and daemon.state.bars == CANDLES
    finally:
        _close(daemon)
    with EventStore(store) as es:
        started = decode(next(iter(es.stream("s-fork").read(1, 1)))[1])
        assert isinstance(started, SessionStarted)
        assert started.session_id == "s-fork" and started.settings["forked_from"] == f"s@{first}"
        assert dict(es.stream("s-fork").info().meta)["forked_from"] == f"s@{first}"
        assert verify_session(es, "s-fork").ok  # consistent with this engine
        assert not verify_session(es, "s").ok  # the old log is kept as it was
        with pytest.raises(InputError, match="exists"):
            from replay.resume import resume

            resume(es, "s", load_card(card), fork_to="s-fork")


def test_a_snapshot_is_trusted_only_under_the_engine_code_that_wrote_it(
    session: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store, card = session
    checkpoints = _checkpoint_seqs(store)
    # A snapshot between the two checkpoints, after a whole input group.
    at = checkpoints[0]
    with EventStore(store) as es:
        core, done = refold(es.stream("s").read(), until=at)
        assert core is not None and done.divergence is None
        view = ReconcileView("BTCUSDT").fold(decode(raw) for _, raw in es.stream("s").read(1, at))
        with snapshots.open_writer(es, "s") as writer:
            snapshots.save(writer, at, core.state, view, -1)
    caplog.set_level(logging.INFO, logger="replay.daemon")

    daemon = _resume(store, card)
    _close(daemon)
    assert f"restored the snapshot at seq {at}" in caplog.text

    # A rule change after the snapshot is found from the snapshot on, at the later seq...
    _changed_checkpoints(monkeypatch)
    with pytest.raises(ResumeRefused, match=f"at seq {checkpoints[1]}:"):
        _resume(store, card)
    # ... and, asked to refold everything, at the first checkpoint of the log.
    with pytest.raises(ResumeRefused, match=f"at seq {checkpoints[0]}:"):
        _resume(store, card, refold=True)
    # Other engine code: the snapshot is not trusted; the whole log is refolded.
    caplog.clear()
    monkeypatch.setattr("replay.resume.engine_code_hash", lambda: "other code")
    with pytest.raises(ResumeRefused, match=f"at seq {checkpoints[0]}:"):
        _resume(store, card)
    assert "the snapshot was written by other engine code" in caplog.text


def test_snapshots_carry_the_engine_code_hash(session: tuple[Path, Path]) -> None:
    store, card = session
    daemon = _resume(store, card)
    try:
        daemon.save_snapshot()
    finally:
        _close(daemon)
    with EventStore(store, readonly=True) as es:
        strategy = load_card(card).new_strategy(Instrument(BTCUSDT))
        snap = snapshots.load_latest(
            es, "s", lambda data: engine.core.restore_state(data, strategy)
        )
    assert snap is not None and snap.code_hash == replay.core.engine_code_hash()
    assert len(snap.code_hash) == 64


# ------------------------------------------------------------ one core, shared


def _count_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = replay.core.engine_step

    def counted(state, event):
        calls[0] += 1
        return real(state, event)

    monkeypatch.setattr(replay.core, "engine_step", counted)
    return calls


def test_backtest_verify_inspect_and_resume_fold_through_the_one_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_steps(monkeypatch)
    store, card = _backtest(tmp_path, seed=5, n=3_000)
    with EventStore(store) as es:
        result = verify_session(es, "s")
        assert result.ok and result.inputs > 3_000
        assert calls[0] == 2 * result.inputs  # the run and the verify, every input once
        calls[0] = 0
        state_at(es, "s", at=500)
        assert 0 < calls[0] < 500
        calls[0] = 0
    daemon = _resume(store, card)
    _close(daemon)
    assert calls[0] == result.inputs


def test_no_driver_keeps_its_own_fold() -> None:
    """The copies are gone: only the core steps the engine or builds a session's start."""
    for path in sorted((ROOT / "replay").rglob("*.py")):
        text = path.read_text()
        if path.name == "core.py":
            continue
        rel = path.relative_to(ROOT)
        assert "SessionStarted(" not in text, f"{rel} builds a SessionStarted"
        for name in ("new_state", "restore_state", "engine.core import step", " step(state"):
            assert name not in text, f"{rel} uses {name} itself"
    daemon = (ROOT / "replay" / "daemon.py").read_text()
    for raw in ('"/v5/', "rest.limiter", "orderStatus", "candles_from_rest_kline"):
        assert raw not in daemon, f"the daemon talks Bybit itself: {raw}"


def test_refold_names_a_derived_event_the_engine_does_not_derive(
    session: tuple[Path, Path],
) -> None:
    store, _ = session
    with EventStore(store) as es:
        records = list(es.stream("s").read())
    stopped = next(i for i, (_, raw) in enumerate(records) if type(decode(raw)) is SessionStopped)
    # A derived event the engine never made, inserted before the final input.
    bogus = encode(Checkpoint(0, 1, "0" * 64))
    forged = [*records[:stopped], (records[stopped][0], bogus), *records[stopped:]]
    _, done = refold(forged)
    assert done.divergence is not None
    assert done.divergence.reason == "the log has an event the engine did not derive"
    assert done.divergence.seq == records[stopped][0]
    _, skipped = refold(forged, verify=False)
    assert skipped.divergence is None


# ------------------------------------------------------------ cancel on exit


def test_cancel_on_exit_is_derived_by_the_engine_so_the_log_still_verifies() -> None:
    """``--cancel-on-exit`` used to append CancelOrders the engine never derived: such a
    log failed ``verify`` and a verified resume would refuse it. The stop now asks the
    engine, which cancels every accepted order (a Requested one is not at the venue)."""
    from engine.events import BUY, CancelOrder
    from engine.strategy import Intent
    from tests.test_engine_support import Desk, of_type, submits

    PRICE = 500_000  # 50,000.0 USDT in ticks

    d = Desk(
        {
            0: [Intent("place_limit", side=BUY, price=PRICE - 1_000, qty=2)],
            1: [Intent("place_limit", side=BUY, price=PRICE - 2_000, qty=2)],
        }
    )
    (first,) = submits(d.close(PRICE))
    d.accept(first)
    (second,) = submits(d.close(PRICE))  # stays Requested
    assert of_type(d.feed(SessionStopped(d.now(), "signal")), CancelOrder) == []
    out = d.feed(SessionStopped(d.now(), "signal", cancel_open=True))
    assert [(c.client_id, c.reason) for c in of_type(out, CancelOrder)] == [
        (first.client_id, "shutdown")
    ]
    assert second.client_id in d.state.book.open
