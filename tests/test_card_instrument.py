"""Instruments for data that is not a Bybit perpetual: the card's ``instrument:``,
``replay run --instrument``, their precedence, and the errors (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.historical import generate
from engine.events import InstrumentSpec, SessionStarted
from engine.instrument import Instrument
from eventstore import EventStore
from replay.cards import IdeaCardError, load_card
from replay.cli import cli
from replay.errors import InputError
from replay.instruments import parse_instrument, resolve
from replay.verify import read_session

ROOT = Path(__file__).resolve().parents[1]

CARD = """\
name: stock
symbol: {symbol}
{instrument}
features:
  f: {{indicator: sma, period: 5}}
  s: {{indicator: sma, period: 20}}
blocks:
  - when: {{cross_above: [f, s]}}
    then: {{enter_long: {{equity_pct: 50}}}}
  - when: {{cross_below: [f, s]}}
    then: exit
"""

STOCK = """\
instrument:
  tick_size: 0.01
  qty_step: 1
  min_qty: 1
  min_notional: 0
  quote: USD
  base: AAPL
"""


def write_card(tmp_path: Path, symbol: str = "AAPL", instrument: str = STOCK) -> Path:
    path = tmp_path / "stock.yaml"
    path.write_text(CARD.format(symbol=symbol, instrument=textwrap.dedent(instrument)))
    return path


def write_data(tmp_path: Path, n: int = 2000) -> Path:
    """Stock-like one-minute bars near 100.00 with a 0.01 tick."""
    inst = Instrument(InstrumentSpec(symbol="AAPL", tick_size="0.01", qty_step="1", min_qty="1"))
    s = generate(seed=3, n=n, instrument=inst, start_price="100")
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(len(s)):
        ts = datetime.fromtimestamp(int(s.open_ms[i]) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        px = [inst.ticks_to_price(int(a[i])) for a in (s.open, s.high, s.low, s.close)]
        lines.append(",".join([ts, *px, str(int(s.volume[i]))]))
    path = tmp_path / "aapl_1m.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def started_of(store: Path, session: str) -> SessionStarted:
    with EventStore(store) as es:
        ev = next(e for _, e in read_session(es, session))
    assert isinstance(ev, SessionStarted)
    return ev


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    main = "import sys; from replay.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", main, *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


# ------------------------------------------------------------------ the card


def test_card_instrument_section_is_loaded(tmp_path: Path) -> None:
    card = load_card(write_card(tmp_path))
    assert card.instrument == InstrumentSpec(
        symbol="AAPL",
        tick_size="0.01",
        qty_step="1",
        min_qty="1",
        min_notional="0",
        max_qty="0",
        base_coin="AAPL",
        quote_coin="USD",
    )
    assert load_card(write_card(tmp_path, "BTCUSDT", "")).instrument is None


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("instrument:\n  tick_size: 0.01\n  qty_step: 1\n", "min_qty"),
        ("instrument:\n  tick_size: abc\n  qty_step: 1\n  min_qty: 1\n", "instrument.tick_size"),
        ("instrument:\n  tick_size: 0.01\n  qty_step: 1\n  min_qty: 1\n  qoute: USD\n", "quote"),
        ("instrument:\n  tick_size: 0\n  qty_step: 1\n  min_qty: 1\n", "must be > 0"),
    ],
    ids=["missing", "not-a-number", "unknown-key", "zero-tick"],
)
def test_bad_card_instrument_names_the_field(tmp_path: Path, section: str, words: str) -> None:
    path = write_card(tmp_path, instrument=section)
    with pytest.raises(IdeaCardError) as info:
        load_card(path)
    assert words in str(info.value) and str(path) in str(info.value)


def test_stock_card_runs_verifies_and_reports_from_the_logged_instrument(tmp_path: Path) -> None:
    store, data = tmp_path / "runs", write_data(tmp_path)
    card = write_card(tmp_path)
    result = invoke(
        "run", str(card), "--data", str(data), "--store", str(store), "--session", "s1", "--json"
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["trades"] > 0
    header, *rows = Path(out["report"]["trades"]).read_text().splitlines()
    qty = header.split(",").index("qty")
    assert rows and all(row.split(",")[qty].isdigit() for row in rows)  # whole shares
    started = started_of(store, "s1")
    assert started.instrument.symbol == "AAPL"
    assert started.instrument.qty_step == "1" and started.instrument.quote_coin == "USD"
    verified = invoke("verify", "s1", "--store", str(store))
    assert verified.exit_code == 0 and "OK s1" in verified.output, verified.output
    rep = invoke("report", "s1", "--store", str(store), "--out", str(tmp_path / "rep"), "--json")
    assert rep.exit_code == 0, rep.output


def test_pepe_like_card_runs_and_verifies(tmp_path: Path) -> None:
    # A symbol the built-in table does not know, with Bybit-like filters in the card.
    store = tmp_path / "runs"
    section = "instrument: {tick_size: 0.01, qty_step: 0.001, min_qty: 0.001, min_notional: 5}\n"
    card = write_card(tmp_path, "PEPEUSDT", section)
    result = invoke("run", str(card), "--store", str(store), "--session", "p", "--candles", "2000")
    assert result.exit_code == 0, result.output
    assert started_of(store, "p").instrument.symbol == "PEPEUSDT"
    assert started_of(store, "p").instrument.quote_coin == "USDT"
    verified = invoke("verify", "p", "--store", str(store))
    assert verified.exit_code == 0, verified.output


# ------------------------------------------------------------------ --instrument


def test_cli_instrument_overrides_the_card(tmp_path: Path) -> None:
    store, data = tmp_path / "runs", write_data(tmp_path)
    card = write_card(tmp_path)
    args = ["run", str(card), "--data", str(data), "--store", str(store), "--session", "o"]
    result = invoke(*args, "--instrument", "qty_step=0.1,min_qty=0.1,quote=EUR")
    assert result.exit_code == 0, result.output
    spec = started_of(store, "o").instrument
    # Given keys win; the rest come from the card's instrument: section.
    assert (spec.qty_step, spec.min_qty, spec.quote_coin) == ("0.1", "0.1", "EUR")
    assert (spec.tick_size, spec.base_coin) == ("0.01", "AAPL")
    assert invoke("verify", "o", "--store", str(store)).exit_code == 0


def test_cli_instrument_alone_serves_an_unknown_symbol(tmp_path: Path) -> None:
    store, data = tmp_path / "runs", write_data(tmp_path)
    card = write_card(tmp_path, instrument="")
    args = ["run", str(card), "--data", str(data), "--store", str(store), "--session", "c"]
    result = invoke(*args, "--instrument", "tick_size=0.01,qty_step=1,min_qty=1,min_notional=0")
    assert result.exit_code == 0, result.output
    spec = started_of(store, "c").instrument
    assert (spec.symbol, spec.tick_size, spec.qty_step) == ("AAPL", "0.01", "1")


def test_precedence_cli_over_card_over_table() -> None:
    card = InstrumentSpec(symbol="BTCUSDT", tick_size="1", qty_step="1", min_qty="1")
    assert resolve("BTCUSDT", None, None).spec.tick_size == "0.1"  # the table
    assert resolve("BTCUSDT", card, None).spec.tick_size == "1"  # the card over the table
    assert resolve("BTCUSDT", card, "tick_size=0.5").spec.tick_size == "0.5"  # --instrument
    assert resolve("BTCUSDT", None, "tick_size=0.5").spec.qty_step == "0.001"  # table's rest


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tick_sise=0.01", "did you mean tick_size?"),
        ("tick_size=abc", "not a non-negative decimal"),
        ("tick_size=-1", "not a non-negative decimal"),
        ("tick_size", "KEY=VALUE"),
        ("tick_size=0.01,tick_size=0.1", "given twice"),
        ("", "empty"),
        ("quote=U$D", "not a currency"),
    ],
)
def test_parse_instrument_errors(text: str, words: str) -> None:
    below = InstrumentSpec(symbol="X", tick_size="1", qty_step="1", min_qty="1")
    with pytest.raises(InputError) as info:
        parse_instrument(text, "X", below)
    assert words in str(info.value)


def test_parse_instrument_needs_the_grid_without_a_spec_below() -> None:
    with pytest.raises(InputError, match="tick_size, qty_step, min_qty must be given"):
        parse_instrument("min_notional=0", "AAPL", None)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tick_sise=0.01,qty_step=1,min_qty=1", "did you mean tick_size?"),
        ("tick_size=x,qty_step=1,min_qty=1", "not a non-negative decimal"),
        ("tick_size=0,qty_step=1,min_qty=1", "must be > 0"),
        ("qty_step=1", "must be given"),
    ],
)
def test_run_bad_instrument_exits_2_without_traceback(
    tmp_path: Path, text: str, words: str
) -> None:
    card = write_card(tmp_path, instrument="")
    proc = run_cli("run", str(card), "--store", str(tmp_path / "r"), "--instrument", text)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_symbol_suggests_a_close_match_and_instrument(tmp_path: Path) -> None:
    card = write_card(tmp_path, "ETHUSDC", "")
    proc = run_cli("run", str(card), "--store", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    assert "did you mean ETHUSDT?" in proc.stderr
    assert "--instrument" in proc.stderr and "instrument:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_table_names_the_quote_currency(tmp_path: Path) -> None:
    store, data = tmp_path / "runs", write_data(tmp_path)
    card = write_card(tmp_path)
    table = CliRunner().invoke(
        cli, ["run", str(card), "--data", str(data), "--store", str(store)], terminal_width=200
    )
    assert table.exit_code == 0, table.output
    assert "final equity" in table.output and " USD" in table.output
    assert "USDT" not in table.output
