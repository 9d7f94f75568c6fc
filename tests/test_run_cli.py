"""`replay run` and the debugging commands, driven as a user would: through the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest
from click.testing import CliRunner, Result

from engine.events import Fill, decode, encode
from eventstore import EventStore
from eventstore.layout import RECORDS_DB, STREAMS_DB, decode_record, pack_key
from replay.cli import cli
from tests.browser import needs_chromium, rendered_dom
from tests.cards import ma_cross_card

HEADER = "timestamp,open,high,low,close,volume\n"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_json(store: Path, *args: str) -> dict:
    result = invoke("run", "--store", str(store), "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    store = tmp_path_factory.mktemp("runs")
    return store, run_json(store, "--candles", "6000", "--session", "base")


def test_run_writes_a_session_and_a_report_that_agree(session: tuple[Path, dict]) -> None:
    _, out = session
    assert out["session_id"] == "base" and out["synthetic_data"] is True
    assert out["candles"] == 6000 and out["trades"] > 0
    for key in ("store", "fingerprint", "final_equity", "events"):
        assert key in out
    report = {k: Path(v) for k, v in out["report"].items()}
    summary = json.loads(report["summary"].read_text())
    assert summary["trades"] == out["trades"]
    assert summary["final_equity"] == pytest.approx(out["final_equity"])
    with report["trades"].open() as fh:
        rows = list(csv.DictReader(fh))
    closed = [r for r in rows if r["close_reason"] != "end of data"]
    assert len(closed) == out["trades"] and rows[: len(closed)] == closed  # the open one last
    assert len(rows) - len(closed) <= 1
    # Every row's PnL (the open trade's marked at the last close) adds up to the equity change.
    total = sum(float(r["pnl"]) for r in rows)
    assert total == pytest.approx(out["final_equity"] - 10_000, abs=0.01)
    from datetime import datetime

    for row in rows[:20]:  # minutes between entry and exit, as the times say
        held = datetime.fromisoformat(row["exit_time"]) - datetime.fromisoformat(row["entry_time"])
        assert float(row["duration_min"]) == held.total_seconds() / 60
    # Closed trades' PnL adds up to the equity change when the run ends flat, or close to it.
    with report["equity"].open() as fh:
        equity = list(csv.DictReader(fh))
    assert len(equity) == 6000
    assert float(equity[-1]["equity"]) == pytest.approx(out["final_equity"])
    html = report["html"].read_text()
    assert "plotly" in html and "id='summary'" in html and "Drawdown" in html
    assert out["fingerprint"] in html


def test_the_log_holds_every_fill_the_report_counts(session: tuple[Path, dict]) -> None:
    store, out = session
    with EventStore(store) as es:
        stream = es.stream("base")
        assert stream.last_seq == out["events"]
        assert stream.fingerprint == out["fingerprint"]
        fills = [e for _, raw in stream.read() if isinstance(e := decode(raw), Fill)]
    # Every closed trade has an entry and an exit; a flip is one fill that is both the exit
    # of one trade and the entry of the next (the default card is a stop-and-reverse).
    assert len(fills) >= out["trades"] + 1


def test_the_same_run_twice_is_the_same_market_story(session: tuple[Path, dict]) -> None:
    store, _ = session
    run_json(store, "--candles", "6000", "--session", "again")
    result = invoke("diff", "base", "again", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert "no differences" in result.output


def test_diff_finds_a_changed_strategy(session: tuple[Path, dict], tmp_path: Path) -> None:
    store, _ = session
    slow = ma_cross_card(tmp_path, fast=30, slow=120, name="slow")
    fast = ma_cross_card(tmp_path, fast=25, slow=120, name="fast")
    run_json(store, str(slow), "--candles", "6000", "--session", "slower")
    run_json(store, str(fast), "--candles", "6000", "--session", "faster")
    result = invoke("diff", "slower", "faster", "--store", str(store), "--json")
    assert result.exit_code == 1
    finding = json.loads(result.output)
    assert finding["same"] is False and finding["first"]["index"] >= 0
    assert finding["differing"] > 0


def test_verify_passes_on_an_untouched_session(session: tuple[Path, dict]) -> None:
    store, out = session
    result = invoke("verify", "base", "--store", str(store), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["events"] == out["events"]
    assert report["derived"] > 0 and report["checkpoints"] >= 0


def _tamper(store: Path, session_id: str, seq: int, new_value: bytes) -> None:
    env = lmdb.open(str(store), max_dbs=8, subdir=True)
    with env.begin(write=True) as txn:
        streams = env.open_db(STREAMS_DB, txn=txn)
        raw = txn.get(session_id.encode(), db=streams)
        assert raw is not None
        stream_id = decode_record(raw).id
        records = env.open_db(RECORDS_DB, txn=txn)
        assert txn.get(pack_key(stream_id, seq), db=records) is not None
        txn.put(pack_key(stream_id, seq), new_value, db=records)
    env.close()


def test_verify_names_the_seq_of_a_tampered_fill(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    run_json(store, "--candles", "3000", "--session", "victim", "--no-report")
    with EventStore(store) as es:
        seq, fill = next(
            (s, e) for s, raw in es.stream("victim").read() if isinstance(e := decode(raw), Fill)
        )
    import msgspec

    _tamper(store, "victim", seq, encode(msgspec.structs.replace(fill, price=fill.price + 10)))
    result = invoke("verify", "victim", "--store", str(store))
    assert result.exit_code == 1
    # The hash chain is kept per link of records: verify names the link holding the edit.
    import re

    match = re.search(r"records (\d+)\.\.(\d+)", result.output)
    assert match, result.output
    assert int(match[1]) <= seq <= int(match[2])
    assert f"at seq {match[1]}" in result.output


def test_verify_names_a_derived_event_the_engine_would_not_make(tmp_path: Path) -> None:
    """A log whose chain is intact but whose engine output was not this engine's."""
    store = tmp_path / "runs"
    run_json(store, "--candles", "3000", "--session", "orig", "--no-report")
    from engine.events import SubmitOrder

    with EventStore(store) as es:
        events = [raw for _, raw in es.stream("orig").read()]
        idx = next(i for i, raw in enumerate(events) if isinstance(decode(raw), SubmitOrder))
        import msgspec

        order = decode(events[idx])
        assert isinstance(order, SubmitOrder)
        events[idx] = encode(msgspec.structs.replace(order, qty=order.qty + 1))
        with es.create_stream("forged", kind="backtest").writer(durable=False) as w:
            w.append_many(events)
    result = invoke("verify", "forged", "--store", str(store))
    assert result.exit_code == 1
    assert f"at seq {idx + 1}: derived event differs" in result.output


def test_sessions_and_inspect_show_what_is_in_the_store(session: tuple[Path, dict]) -> None:
    store, out = session
    listed = invoke("sessions", "--store", str(store), "--json")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    base = next(r for r in rows if r["session"] == "base")
    assert base["status"] == "complete" and base["events"] == out["events"]
    assert base["mode"] == "backtest" and base["fingerprint"] == out["fingerprint"]

    fills = invoke(
        "inspect", "base", "--store", str(store), "--type", "Fill", "--limit", "2", "--json"
    )
    lines = [json.loads(line) for line in fills.output.splitlines()]
    assert len(lines) == 2 and all(row["type"] == "Fill" for row in lines)

    state = json.loads(
        invoke("inspect", "base", "--store", str(store), "--at", "300", "--full", "--json").output
    )
    assert state["seq"] == 300 and state["engine"] is not None
    assert "position_qty" in state["account"]


def test_report_renders_any_session_from_its_log(
    session: tuple[Path, dict], tmp_path: Path
) -> None:
    store, out = session
    result = invoke("report", "base", "--store", str(store), "--out", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["trades"] == out["trades"]
    assert data["final_equity"] == pytest.approx(out["final_equity"])
    assert (tmp_path / "r" / "report.html").exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            HEADER + "2024-01-01 00:00:00,1,2,0.5,1.5,3\n2024-01-01 00:01:00,1,x,1,1,1\n",
            "row",
        ),
        (
            HEADER + "2024-01-01 00:01:00,1,2,0.5,1.5,3\n2024-01-01 00:00:00,1,2,0.5,1.5,3\n",
            "sort",
        ),
        (
            HEADER
            + "".join(f"2024-01-01 00:0{m}:00,1,2,0.5,1.5,3\n" for m in (0, 1, 2, 3, 6, 7, 8)),
            "gap",
        ),
    ],
    ids=["malformed", "unsorted", "gap"],
)
def test_bad_data_exits_2_naming_the_problem(tmp_path: Path, content: str, needle: str) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(content)
    result = CliRunner().invoke(cli, ["run", "--data", str(data), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert "bad.csv" in result.output and needle in result.output.lower()
    assert "Traceback" not in result.output


def test_a_bad_card_exits_2_with_its_file_and_field(tmp_path: Path) -> None:
    card = ma_cross_card(tmp_path, name="variant")
    card.write_text(card.read_text().replace("indicator: sma,", "indicator: smaa,"))
    result = CliRunner().invoke(cli, ["run", str(card), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "variant.yaml" in result.output and "sma" in result.output
    assert "Traceback" not in result.output


def test_unknown_session_and_bad_options_exit_2(session: tuple[Path, dict], tmp_path: Path) -> None:
    store, _ = session
    assert invoke("verify", "nope", "--store", str(store)).exit_code == 2
    assert invoke("inspect", "base", "--store", str(store), "--type", "Fil").exit_code == 2
    bad_balance = CliRunner().invoke(cli, ["run", "--balance", "lots", "--store", str(tmp_path)])
    assert bad_balance.exit_code == 2 and "--balance" in bad_balance.output


def test_run_as_a_real_subprocess(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from replay.cli import main; main()", "run", "--candles", "2000",
         "--store", str(tmp_path / "runs"), "--quiet", "--json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["candles"] == 2000


REAL = [
    ("binance_spot_BTCUSDT_1h_20180209_20250331.csv", "1h", ["--gaps", "fill", "--round-prices"]),
    ("binanceus_spot_BTCUSDT_1m_20230301_20230321.csv", "1m", ["--round-prices"]),
    ("bybit_linear_BTCUSDT_5m_20250403_20250702.csv", "5m", ["--drop-last"]),
    ("bybit_linear_BTCUSDT_15m_20250403_20250702.csv", "15m", ["--drop-last"]),
]


@pytest.mark.parametrize(("name", "timeframe", "flags"), REAL, ids=[r[1] for r in REAL])
def test_a_backtest_on_each_real_file(
    tmp_path: Path, name: str, timeframe: str, flags: list[str]
) -> None:
    data = SHARED / name
    if not data.exists():
        pytest.skip(f"{data} is not here (../shared/data is read in place, never copied)")
    card = ma_cross_card(tmp_path, fast=30, slow=120, timeframe=timeframe)
    out = run_json(tmp_path / "runs", str(card), "--data", str(data), "--no-report", *flags)
    assert out["synthetic_data"] is False and out["candles"] > 1000 and out["trades"] > 0
    verified = invoke("verify", out["session_id"], "--store", str(tmp_path / "runs"))
    assert verified.exit_code == 0, verified.output


def test_an_interrupted_run_exits_130_and_its_log_says_so(tmp_path: Path) -> None:
    import signal
    import time

    store = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from replay.cli import main; main()", "run", "--candles",
         "3000000", "--store", str(store), "--session", "long", "--quiet"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until events are being written
        time.sleep(0.5)
        if (store / "data.mdb").exists() and (store / "data.mdb").stat().st_size > 10_000_000:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    listed = invoke("sessions", "--store", str(store), "--json")
    row = json.loads(listed.output.splitlines()[0])
    assert row["session"] == "long" and row["status"] == "interrupted" and row["events"] > 0
    report = invoke("report", "long", "--store", str(store), "--out", str(tmp_path / "r"))
    assert report.exit_code == 0  # an interrupted session still has a report


@needs_chromium
def test_the_report_renders_its_charts_in_headless_chromium(
    session: tuple[Path, dict], tmp_path: Path
) -> None:
    """The page's JavaScript runs offline and draws every chart (plotly's SVG roots)."""
    _, out = session
    html = Path(out["report"]["html"])
    dom = rendered_dom(html, tmp_path / "profile", budget_ms=5000)
    assert dom.count('class="main-svg"') >= 1  # plotly drew the figure
    # markers x5, stop and target levels, the card's features, equity, drawdown
    assert dom.count('class="trace scatter') >= 9 and dom.count('class="trace boxes') == 1
    assert dom.count('class="ytick"') >= 3  # every subplot has a value axis
    assert out["session_id"] in dom
