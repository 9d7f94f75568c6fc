"""``replay data instruments``: Bybit's linear instruments-info cached in the store, used
by backtests of any listed symbol, tested against the emulator's multi-page answer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pybit.unified_trading import HTTP

from adapters.historical import generate
from engine.events import InstrumentSpec, SessionStarted
from eventstore import EventStore
from replay.cli import cli
from replay.errors import InputError
from replay.instrument_cache import MAX_AGE_DAYS, load_cache, save_cache
from replay.instruments import resolve
from replay.verify import read_session
from tests.cards import symbol_card
from tools.bybit_emulator import EmulatorConfig, EmulatorHandle
from tools.bybit_emulator.instruments import CATALOG

ROOT = Path(__file__).resolve().parents[1]
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    series = generate(seed=5, n=50)
    handle = EmulatorHandle.start(list(series.events()), EmulatorConfig(history=10))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(autouse=True)
def _local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    main = "import sys; from replay.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", main, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "NO_PROXY": "127.0.0.1"},
        timeout=120,
    )


def download(store: Path, emu: EmulatorHandle, *more: str) -> Result:
    return invoke("data", "instruments", "--store", str(store), "--base-url", emu.rest, *more)


def test_emulator_pages_its_instruments_as_bybit_does(emulator: EmulatorHandle) -> None:
    http = HTTP(retry_delay=0)
    http.endpoint = emulator.rest
    first = http.get_instruments_info(category="linear", limit=3)["result"]
    assert [r["symbol"] for r in first["list"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert first["nextPageCursor"]
    second = http.get_instruments_info(category="linear", limit=3, cursor=first["nextPageCursor"])[
        "result"
    ]
    assert [r["symbol"] for r in second["list"]] == ["XRPUSDT", "DOGEUSDT", "1000PEPEUSDT"]
    whole = http.get_instruments_info(category="linear")["result"]
    assert len(whole["list"]) == len(CATALOG) and whole["nextPageCursor"] == ""
    pre = http.get_instruments_info(category="linear", status="PreLaunch")["result"]["list"]
    assert [r["symbol"] for r in pre] == ["BIOUSDT"] and pre[0]["isPreListing"] is True


def test_download_walks_every_page_into_a_dated_cache(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    store = tmp_path / "runs"
    result = download(store, emulator, "--page-size", "2")
    assert result.exit_code == 0, result.output
    assert f"wrote {len(CATALOG)} instruments" in result.output
    cache = load_cache(store)
    assert cache is not None and cache.source == emulator.rest.rstrip("/")
    assert not cache.stale() and len(cache.date) == 10
    doge = cache.specs["DOGEUSDT"]
    assert (doge.tick_size, doge.qty_step, doge.min_qty, doge.base_coin) == (
        "0.00001",
        "1",
        "1",
        "DOGE",
    )
    raw = json.loads((store / "instruments" / "bybit-linear.json").read_text())
    assert raw["fetched"] == cache.date and "1000PEPEUSDT" in raw["instruments"]


def test_a_backtest_of_a_cached_symbol_logs_the_cached_spec(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    store = tmp_path / "runs"
    assert download(store, emulator).exit_code == 0
    doge = symbol_card(tmp_path, "DOGEUSDT")
    result = invoke("run", str(doge), "--store", str(store), "--session", "d", "--no-report")
    assert result.exit_code == 0, result.output
    with EventStore(store) as s:
        started = next(e for _, e in read_session(s, "d") if isinstance(e, SessionStarted))
    assert started.instrument == load_cache(store).specs["DOGEUSDT"]  # type: ignore[union-attr]
    # verify reads the logged spec: it passes with the cache gone.
    (store / "instruments" / "bybit-linear.json").unlink()
    assert invoke("verify", "d", "--store", str(store)).exit_code == 0
    report = invoke("report", "d", "--store", str(store), "--json")
    assert report.exit_code == 0, report.output


def test_precedence_instrument_over_card_over_cache_over_table(tmp_path: Path) -> None:
    cached = InstrumentSpec(symbol="BTCUSDT", tick_size="0.5", qty_step="0.01", min_qty="0.01")
    cache = save_cache(tmp_path, [cached], "test")
    card_spec = InstrumentSpec(symbol="BTCUSDT", tick_size="1", qty_step="1", min_qty="1")
    assert resolve("BTCUSDT", None, None).spec.tick_size == "0.1"  # the table
    assert resolve("BTCUSDT", None, None, cache).spec.tick_size == "0.5"  # the cache over it
    assert resolve("BTCUSDT", card_spec, None, cache).spec.tick_size == "1"  # the card
    assert resolve("BTCUSDT", card_spec, "tick_size=2", cache).spec.tick_size == "2"
    assert resolve("BTCUSDT", None, "tick_size=2", cache).spec.qty_step == "0.01"


def test_a_stale_cache_is_used_with_a_warning(tmp_path: Path) -> None:
    spec = InstrumentSpec(symbol="DOGEUSDT", tick_size="0.00001", qty_step="1", min_qty="1")
    import time

    old = time.time_ns() // 1_000_000 - (MAX_AGE_DAYS + 3) * DAY_MS
    cache = save_cache(tmp_path, [spec], "test", fetched_ms=old)
    notes: list[str] = []
    assert resolve("DOGEUSDT", None, None, cache, notes).spec == spec
    assert len(notes) == 1 and f"older than {MAX_AGE_DAYS} days" in notes[0]
    assert "replay data instruments" in notes[0]
    proc = run_cli("run", str(symbol_card(tmp_path, "DOGEUSDT")), "--store", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "10 days old" in proc.stderr
    # a symbol the stale cache lacks: the error says it is stale
    with pytest.raises(InputError, match=r"stale: run `replay data instruments`"):
        resolve("XRPUSDT", None, None, cache)


@pytest.mark.parametrize(
    ("with_cache", "symbol", "words"),
    [
        (True, "PEPEUSDT", "did you mean 1000PEPEUSDT?"),
        (True, "DOGEUSD", "did you mean DOGEUSDT?"),
        (False, "DOGEUSDT", "no instruments cache in the store"),
    ],
)
def test_unknown_or_uncached_symbols_exit_2_with_hints(
    emulator: EmulatorHandle, tmp_path: Path, with_cache: bool, symbol: str, words: str
) -> None:
    store = tmp_path / "runs"
    if with_cache:
        assert download(store, emulator).exit_code == 0
    proc = run_cli("run", str(symbol_card(tmp_path, symbol)), "--store", str(store))
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert "--instrument" in proc.stderr


def test_no_network_exits_2_and_keeps_the_cache(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = tmp_path / "runs"
    spec = InstrumentSpec(symbol="DOGEUSDT", tick_size="0.00001", qty_step="1", min_qty="1")
    save_cache(store, [spec], "before")
    args = ["data", "instruments", "--store", str(store), "--base-url", f"http://127.0.0.1:{port}"]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "could not download instruments-info" in proc.stderr
    assert "cache is unchanged" in proc.stderr and "Traceback" not in proc.stderr
    assert load_cache(store).source == "before"  # type: ignore[union-attr]


def test_a_damaged_cache_exits_2(tmp_path: Path) -> None:
    (tmp_path / "instruments").mkdir()
    (tmp_path / "instruments" / "bybit-linear.json").write_text("{not json")
    proc = run_cli("run", str(symbol_card(tmp_path, "BTCUSDT")), "--store", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert "instruments cache" in proc.stderr and "damaged" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_cache_with_unknown_fields_is_damaged_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "instruments").mkdir()
    body = {"fetched_ms": 1, "fetched": "1970-01-01", "source": "s", "instruments": {}}
    body["instruments"] = {"DOGEUSDT": {"tick": "0.1"}}
    (tmp_path / "instruments" / "bybit-linear.json").write_text(json.dumps(body))
    with pytest.raises(InputError, match="damaged"):
        load_cache(tmp_path)


def test_the_download_is_paced_by_the_rate_limiter(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    import time

    began = time.monotonic()
    result = download(tmp_path / "runs", emulator, "--page-size", "2", "--rate", "2")
    took = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert took >= 1.0  # four requests at two per rolling second: one full window waited
