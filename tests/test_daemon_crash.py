"""Kill the demo daemon with SIGKILL again and again; the log must come back whole.

Kills land at deterministic crash points (``REPLAY_CRASH_AT``: after a command is
committed but before it is sent, and after it is sent but before its answer is
folded) and at random moments. After every kill the daemon is restarted with the
same arguments. At the end:

* every execution the emulator made is in the log exactly once;
* no orderLinkId was placed twice at the venue;
* the position and balance folded from the log equal the emulator's;
* ``replay verify`` passes on the session.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.events import CandleClosed, Fill, SubmitOrder
from projections.account import AccountView
from replay.cli import cli
from tests.cards import ma_cross_card
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess

HISTORY = 100
KILLS = int(__import__("os").environ.get("REPLAY_KILLS", "21"))


@pytest.fixture
def busy_card(tmp_path: Path) -> Path:
    """Fast averages on 5-minute candles: an order every few candles, plenty to kill."""
    return ma_cross_card(tmp_path, fast=2, slow=5, timeframe="5m", name="busy")


def campaign(
    emulator: EmulatorHandle,
    card: Path,
    store: Path,
    *,
    kills: int,
    seed: int,
    faults: Callable[[EmulatorHandle, random.Random], None] | None = None,
) -> tuple[list[str], DaemonProcess]:
    rng = random.Random(seed)
    points = ["after_commit", "after_send", "random"]
    history: list[str] = []
    daemon = DaemonProcess(emulator, card, store, "crashy", "--warmup", str(HISTORY))
    daemon.wait_warm(HISTORY)
    while len(history) < kills:
        point = points[len(history) % len(points)]
        if point == "random":
            # Play a little, then kill at an arbitrary moment (maybe mid-commit, mid-send).
            with contextlib.suppress(AssertionError):
                daemon.play(rng.randint(1, 3))
            emulator.advance(1)
            time.sleep(rng.uniform(0.0, 0.02))
            daemon.kill()
        else:
            daemon.kill()
            daemon = DaemonProcess(
                emulator, card, store, "crashy", env={"REPLAY_CRASH_AT": f"{point}:1"}
            )
            daemon.wait_running()
            if faults is not None:
                faults(emulator, rng)
            deadline = time.monotonic() + 30
            while daemon.proc.poll() is None and time.monotonic() < deadline:
                try:
                    daemon.play(1)
                except AssertionError:
                    break  # it died at its crash point while we waited
            assert daemon.proc.poll() is not None, f"never reached {point}: {daemon.tail()}"
            daemon.kill()
            assert daemon.proc.returncode == -9, daemon.tail()
        history.append(point)
        emulator.reset_faults()
        daemon = DaemonProcess(emulator, card, store, "crashy")
        daemon.wait_running()
    daemon.play(3)
    assert daemon.stop() == 0, daemon.tail()
    return history, daemon


def _executions(state: Any) -> list[Fill]:
    """Every execution the emulator's matching engine (a SimVenue) made."""
    return list(state.venue.executions())


def _wallet(state: Any) -> int:
    return int(state.venue.wallet)


def check_whole(emulator: EmulatorHandle, daemon: DaemonProcess, store: Path) -> None:
    events = daemon.events
    fills = [e for e in events if isinstance(e, Fill)]
    venue_fills = emulator.call(_executions)
    assert sorted(f.exec_id for f in fills) == sorted(f.exec_id for f in venue_fills)
    assert len({f.exec_id for f in fills}) == len(fills), "an execution was logged twice"

    placed = emulator.call(lambda st: sorted(st.link_ids))
    ordered = sorted({e.client_id for e in events if isinstance(e, SubmitOrder)})
    assert set(placed) <= set(ordered), "the venue has orders this session never decided"
    # creates the venue acted on per orderLinkId (REST or Trade API), refused duplicates
    # included: a client that sends one twice shows here (a retry after 10006 does not: the
    # venue turned that request away before placing anything)
    attempts = emulator.call(lambda st: dict(st.creates_acted_on))
    twice = {link: n for link, n in attempts.items() if n > 1}
    assert not twice, f"orderLinkIds sent to the venue more than once: {twice}"

    view = AccountView().fold(events)
    venue_qty = emulator.call(lambda st: st.venue.position.qty)
    venue_wallet = emulator.call(_wallet)
    assert view.position.qty == venue_qty
    assert view.balance == venue_wallet
    assert any(isinstance(e, CandleClosed) and not e.backfill for e in events)

    verified = CliRunner().invoke(cli, ["verify", "crashy", "--store", str(store)])
    assert verified.exit_code == 0, verified.output


@pytest.mark.parametrize(
    "kills",
    [9, pytest.param(KILLS, marks=[pytest.mark.soak, pytest.mark.timeout(3600)])],
    ids=["short", "soak"],
)
def test_repeated_kills_lose_and_duplicate_nothing(
    emulator_factory: Callable[..., EmulatorHandle], busy_card: Path, tmp_path: Path, kills: int
) -> None:
    """Kills at each crash point in turn (three of each in the short run; ``REPLAY_KILLS``,
    21 by default, in the soak run), every restart resuming the same session."""
    emulator = emulator_factory(history=HISTORY)
    store = tmp_path / "live"
    history, daemon = campaign(emulator, busy_card, store, kills=kills, seed=1)
    assert history.count("after_commit") == history.count("after_send") == kills // 3
    check_whole(emulator, daemon, store)


FAULTS = [
    "lose_reply", "drop_ws", "rate_limit", "skew", "stall", "duplicate", "reorder", "malformed",
]  # fmt: skip
CHOSEN: list[str] = []


def with_faults(emulator: EmulatorHandle, rng: random.Random) -> None:
    """One fault of the issue's list per restart: lost replies, WebSocket drops, 10006
    bursts, a skewed clock (10002 until the daemon re-syncs), a create stalled at the venue
    (applied seconds later, maybe after a kill), duplicated and reordered private messages,
    and a malformed frame (where the emulator has that fault)."""
    choice = rng.choice(FAULTS)
    CHOSEN.append(choice)
    if choice == "lose_reply":
        emulator.set_faults(lose_reply_next=1)
    elif choice == "drop_ws":
        emulator.drop_ws("all")
    elif choice == "rate_limit":
        emulator.set_faults(rate_limit_next=3)
    elif choice == "stall":
        emulator.set_faults(timeout_next=1, timeout_s=3.0)
    elif choice == "duplicate":
        emulator.set_faults(private_duplicate=True)
    elif choice == "reorder":
        emulator.set_faults(private_reorder=True)
    elif choice == "malformed":
        from tools.bybit_emulator.faults import Faults

        if "malformed_next" in Faults.__dataclass_fields__:
            emulator.set_faults(malformed_next=1)
    else:
        emulator.set_faults(clock_skew_ms=rng.choice([-10_000, 10_000]))


@pytest.mark.parametrize(
    "kills",
    [6, pytest.param(100, marks=[pytest.mark.soak, pytest.mark.timeout(3600)])],
    ids=["short", "soak"],
)
def test_kills_with_faults_on_lose_and_duplicate_nothing(
    emulator_factory: Callable[..., EmulatorHandle], busy_card: Path, tmp_path: Path, kills: int
) -> None:
    """Every fault of ``with_faults``, one per restart, with kills at the crash points and
    at random moments; prints the campaign's counts as one JSON line (run with -s)."""
    import json

    emulator = emulator_factory(history=HISTORY)
    store = tmp_path / "live"
    CHOSEN.clear()
    history, daemon = campaign(emulator, busy_card, store, kills=kills, seed=2, faults=with_faults)
    check_whole(emulator, daemon, store)
    events = daemon.events
    counts = {
        "kills": len(history),
        "by_point": {p: history.count(p) for p in sorted(set(history))},
        "faults": {f: CHOSEN.count(f) for f in sorted(set(CHOSEN))},
        "orders": sum(isinstance(e, SubmitOrder) for e in events),
        "fills": sum(isinstance(e, Fill) for e in events),
        "venue_executions": len(emulator.call(_executions)),
        "max_creates_per_link": max(emulator.call(lambda st: dict(st.creates_acted_on)).values()),
        "max_requests_per_link": max(emulator.emulator.wire.creates.values()),
    }
    print(json.dumps({"kill_campaign": counts}))
