"""Every bad input is a message: exit 2, no traceback, the field named (issue 12 §8).

Driven through the real CLI (click's CliRunner, exceptions not caught by the runner) so
what is asserted is what a user sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventstore import EventStore
from replay.cli import cli

CARD = """\
name: t
symbol: BTCUSDT
features:
  fast: {indicator: sma, period: 5}
  slow: {indicator: sma, period: 20}
blocks:
  - when: {cross_above: [fast, slow]}
    then: {enter_long: {qty: 0.01}}
  - when: {cross_below: [fast, slow]}
    then: exit
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def refused(result: Result, *words: str) -> str:
    """Exit 2 with a message naming each of ``words`` and no traceback."""
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out and "internal error" not in out, out
    for word in words:
        assert word in out, (word, out)
    return out


def run_card(tmp_path: Path, text: str, *extra: str) -> Result:
    card = tmp_path / "card.yaml"
    card.write_text(text)
    store = tmp_path / "runs"
    args = ("run", str(card), "--store", str(store), "--candles", "3000", "--no-report", "-q")
    return invoke(*args, *extra)


def no_session_left(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    if (store / "data.mdb").exists():
        with EventStore(store) as es:
            assert [i.name for i in es.streams()] == []


# ------------------------------------------------------------ 1. card values, at load

ABSURD = [
    (CARD.replace("qty: 0.01", "qty: 1e300"), "blocks[0].then.enter_long.qty"),
    (CARD + "sim:\n  slippage_ticks: 100000000000000000000\n", "sim.slippage_ticks"),
    (
        CARD + "execution:\n  limit_timeout_bars: 100000000000000000000\n",
        "execution.limit_timeout_bars",
    ),
    (
        CARD + "execution:\n  checkpoint_every: 100000000000000000000\n",
        "execution.checkpoint_every",
    ),
    (CARD + "risk:\n  max_position_notional: 1e300\n", "risk.max_position_notional"),
    (CARD + "sim:\n  funding_rate: 1e18\n", "sim.funding_rate"),
    (CARD + "sim:\n  taker_fee: -0.5\n", "sim.taker_fee"),
    (CARD + "sim:\n  maker_fee: -0.5\n", "sim.maker_fee"),
    (CARD + 'sim:\n  taker_fee: "100%"\n', "sim.taker_fee"),
    (CARD + 'sim:\n  maintenance_margin: "200%"\n', "sim.maintenance_margin"),
    (CARD + 'sim:\n  maintenance_margin: "-5%"\n', "sim.maintenance_margin"),
    (CARD + 'sim:\n  maintenance_margin: "20%"\n  leverage: 10\n', "sim.maintenance_margin"),
    (CARD + 'sim:\n  liquidation_fee: "50%"\n', "sim.liquidation_fee"),
    (CARD + "sim:\n  funding_interval: 0\n", "sim.funding_interval"),
    (CARD + "sim:\n  funding_interval: 99999999999999999999d\n", "sim.funding_interval"),
    (CARD + "risk:\n  max_open_orders: 100000000000000000000\n", "risk.max_open_orders"),
    (CARD + "execution:\n  limit_offset: 1e300\n", "execution.limit_offset"),
]


@pytest.mark.parametrize(("text", "field"), ABSURD, ids=[f for _, f in ABSURD])
def test_an_absurd_card_value_is_refused_at_load(tmp_path: Path, text: str, field: str) -> None:
    out = refused(run_card(tmp_path, text), field, "expected")
    assert "card.yaml" in out
    no_session_left(tmp_path)  # refused before any session stream exists


# ------------------------------------------------- 2. unreadable cards, broken modules


def test_a_card_that_is_not_utf8(tmp_path: Path) -> None:
    card = tmp_path / "card.yaml"
    card.write_bytes(CARD.encode() + b"# caf\xe9\n")
    refused(invoke("run", str(card), "--store", str(tmp_path / "runs")), "card.yaml", "UTF-8")


STRATEGY_CARD = "symbol: BTCUSDT\nstrategy:\n  class: mystrat.Strat\n"
GOOD_CLASS = """
class Strat:
    def on_bar(self, bar, ctx): return []
    def snapshot(self): return None
    def restore(self, state): pass
"""


@pytest.mark.parametrize(
    ("module", "words"),
    [
        ("raise RuntimeError('boom')\n" + GOOD_CLASS, ("RuntimeError", "boom")),
        ("def broken(:\n" + GOOD_CLASS, ("SyntaxError", "mystrat.py")),
        ("import sys\nsys.exit(0)\n" + GOOD_CLASS, ("SystemExit",)),
    ],
    ids=["raises", "syntax-error", "sys-exit"],
)
def test_a_strategy_module_that_fails_on_import(
    tmp_path: Path, module: str, words: tuple[str, ...]
) -> None:
    (tmp_path / "mystrat.py").write_text(module)
    out = refused(run_card(tmp_path, STRATEGY_CARD), "strategy.class", "mystrat", *words)
    assert "card.yaml" in out
    no_session_left(tmp_path)


def test_a_strategy_that_exits_or_raises_while_running(tmp_path: Path) -> None:
    cases = (
        ("exits", "import sys; sys.exit(0)", "SystemExit"),
        ("div", "1 / 0", "ZeroDivisionError"),
    )
    for name, body, word in cases:
        (tmp_path / f"run_{name}.py").write_text(GOOD_CLASS.replace("return []", body))
        card = STRATEGY_CARD.replace("mystrat", f"run_{name}")
        refused(run_card(tmp_path, card), "Strat.on_bar", word, f"run_{name}.py")


# ------------------------------------------------------------------- 3. CLI options


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--balance", "1e11"), ("--balance", "10000000000")),
        (("--balance", "1e300"), ("--balance", "10000000000")),
        (("--balance", "-5"), ("--balance",)),
        (("--candles", "-5"), ("--candles", "1<=x<=10000000")),
        (("--candles", "100000000000000"), ("--candles", "1<=x<=10000000")),
        (("--candles", "1e14"), ("--candles",)),
        (("--seed", "-1"), ("--seed", "x>=0")),
    ],
    ids=lambda v: "_".join(v) if isinstance(v, tuple) and v[0].startswith("--") else "",
)
def test_a_run_option_out_of_range(tmp_path: Path, args: tuple[str, ...], words: tuple) -> None:
    refused(invoke("run", "--store", str(tmp_path / "runs"), "-q", "--no-report", *args), *words)
    no_session_left(tmp_path)


def test_the_largest_balance_still_runs(tmp_path: Path) -> None:
    args = ("--balance", "1e10", "--candles", "500", "--seed", str(2**70))
    result = invoke("run", "--store", str(tmp_path / "runs"), "-q", "--no-report", *args)
    assert result.exit_code == 0, result.output


def test_a_daemon_option_out_of_range(tmp_path: Path) -> None:
    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    base = ("demo", str(card), "--session", "d", "--store", str(tmp_path / "runs"))
    refused(invoke(*base, "--metrics-port", "-1"), "--metrics-port", "0<=x<=65535")
    refused(invoke(*base, "--metrics-port", "70000"), "--metrics-port", "0<=x<=65535")
    refused(invoke(*base, "--reconcile-every", "0"), "--reconcile-every")
    refused(invoke(*base, "--warmup", "-3"), "--warmup")


# ------------------------------------------------ 4. hostile YAML and expressions


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + f"\nsymbol: BTCUSDT\nblocks: *a{levels}\n"


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    import time

    t0 = time.perf_counter()
    refused(run_card(tmp_path, _bomb(9)), "card.yaml", "alias")
    assert time.perf_counter() - t0 < 5


def test_a_shared_alias_within_bounds_still_loads(tmp_path: Path) -> None:
    text = CARD.replace("  - when: {cross_above", "  - when: &golden {cross_above", 1)
    text += "  - when: *golden\n    then: exit\n"
    card = tmp_path / "card.yaml"
    card.write_text(text)
    result = invoke("run", str(card), "--store", str(tmp_path / "runs"), "--candles", "300", "-q")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("symbol: BTCUSDT\nblocks: &x [*x]\n", ("alias", "blocks")),
        ("symbol: BTCUSDT\nblocks: " + "[" * 5000 + "]" * 5000 + "\n", ("nested",)),
        (
            CARD.replace("{cross_above: [fast, slow]}", '"' + "not " * 5000 + 'flat"'),
            ("blocks[0].when", "expression"),
        ),
        (
            CARD.replace(
                "{cross_above: [fast, slow]}", '"' + " + ".join(["close"] * 50_000) + ' > 0"'
            ),
            ("blocks[0].when", "expression"),
        ),
        (
            CARD.replace(
                "{cross_above: [fast, slow]}", '"' + "(" * 300 + "close" + ")" * 300 + ' > 0"'
            ),
            ("blocks[0].when", "expression"),
        ),
    ],
    ids=["recursive-alias", "deep-lists", "5000-not", "50k-sum", "300-parens"],
)
def test_hostile_structure_is_a_message(tmp_path: Path, text: str, words: tuple) -> None:
    refused(run_card(tmp_path, text), "card.yaml", *words)


# ---------------------------------------------------------------------- 5. data files

KLINE = '["1743465600000", "82000.0", "82010.0", "81990.0", "82005.0", "1.5", "0"]'


def _data_file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


HOSTILE_DATA = [
    (
        "huge-field.csv",
        "timestamp,open,high,low,close,volume\n"
        "2025-04-01 00:00,82000," + "1" * 200_000 + ",81990,82005,1.5\n",
        "huge-field.csv",
    ),
    (
        "huge-field-quoted.csv",
        'timestamp,open,high,low,close,volume\n2025-04-01 00:00,82000,"'
        + "x" * 200_000
        + '",81990,82005,1.5\n',
        "huge-field-quoted.csv",
    ),
    ("ts30.json", KLINE.replace("1743465600000", "1" * 30).join("[]"), "ts30.json"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json"),
]


@pytest.mark.parametrize(
    ("name", "body", "word"), HOSTILE_DATA, ids=[n for n, _, _ in HOSTILE_DATA]
)
def test_a_hostile_data_file_is_a_message(tmp_path: Path, name: str, body: str, word: str) -> None:
    path = _data_file(tmp_path, name, body)
    refused(invoke("run", "--data", str(path), "--store", str(tmp_path / "runs"), "-q"), word)
    refused(invoke("data", "check", str(path)), word)


def test_a_data_path_that_never_ends_is_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        refused(invoke("run", "--data", str(path), "--store", str(tmp_path / "runs")), str(path))
        refused(invoke("data", "check", str(path)), str(path))


# ----------------------------------------------------------- 6. pipes and full disks


def test_a_closed_pipe_ends_a_long_listing_quietly(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    store = tmp_path / "runs"
    assert (
        invoke("run", "--store", str(store), "--candles", "3000", "--session", "s", "-q").exit_code
        == 0
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = "from replay.cli import main; main()"
    for args in (
        ["inspect", "s", "--limit", "100000"],
        ["inspect", "s", "--json", "--limit", "100000"],
    ):
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args, "--store", str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline()  # like `| head -1`: read a line, then hang up
        proc.stdout.close()
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err and "internal error" not in err, (
            err
        )
        assert rc == 141, (rc, err)


def test_a_full_disk_is_a_message(tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "summary.json").symlink_to("/dev/full")  # every write there: ENOSPC
    args = ("--candles", "500", "--report-dir", str(report), "-q")
    refused(invoke("run", "--store", str(tmp_path / "runs"), *args), "No space left on device")


# ----------------------------------------------------------------- daemon set-up


def test_daemon_keys_missing_or_malformed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_API_SECRET", raising=False)
    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    url = "http://127.0.0.1:9"
    store = str(tmp_path / "runs")
    base = ("demo", str(card), "--store", store, "--emulator-url", url, "--venue", "emulator")
    refused(invoke(*base, "--session", "k1"), "BYBIT_API_KEY")
    keys = tmp_path / "keys.txt"
    keys.write_text("garbage\n")
    refused(invoke(*base, "--session", "k2", "--keys", str(keys)), "keys.txt", "key=")


def test_resuming_with_a_different_card_is_refused(tmp_path: Path) -> None:
    import hashlib

    from engine.events import SessionStarted, encode
    from engine.instrument import BTCUSDT

    store = tmp_path / "runs"
    started = SessionStarted(
        ts=1_700_000_000_000,
        session_id="live1",
        mode="demo",
        card_text=CARD,
        card_hash=hashlib.sha256(CARD.encode()).hexdigest(),
        venue="emulator",
        instrument=BTCUSDT,
        version="test",
        initial_balance=10_000 * 10**8,
        card_path="card.yaml",
        timeframe="1m",
    )
    with EventStore(store) as es, es.create_stream("live1", kind="demo").writer(True) as w:
        w.append_many([encode(started)])
    other = tmp_path / "other.yaml"
    other.write_text(CARD.replace("period: 20", "period: 30"))
    url = "http://127.0.0.1:9"
    args = ("demo", str(other), "--session", "live1", "--store", str(store), "--venue", "emulator")
    refused(invoke(*args, "--emulator-url", url), "other.yaml", "live1", "card.yaml")


def test_a_strategy_constructor_that_exits(tmp_path: Path) -> None:
    module = GOOD_CLASS.replace(
        "class Strat:", "class Strat:\n    def __init__(self): raise SystemExit(0)"
    )
    (tmp_path / "ctor_exit.py").write_text(module)
    card = STRATEGY_CARD.replace("mystrat", "ctor_exit")
    refused(run_card(tmp_path, card), "strategy.params", "SystemExit")
    no_session_left(tmp_path)
