"""Candle files at another timeframe than the card's: one parser, exact resampling, --timeframe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from adapters.historical import CandleSeries, DataError, generate, load_candles, write_csv
from adapters.historical.resample import resample
from engine.events import (
    AmendOrder,
    CancelOrder,
    IntentEmitted,
    SessionStarted,
    SubmitOrder,
    encode,
)
from engine.instrument import BTCUSDT, Instrument
from eventstore import EventStore
from replay.cli import cli
from replay.verify import read_session
from tests.cards import ma_cross_card

INST = Instrument(BTCUSDT)
# ../shared/data next to the repo (a worktree sits one level deeper: ../../shared/data).
_HERE = Path(__file__).resolve().parents
SHARED = (
    next((p for p in (_HERE[2] / "shared", _HERE[3] / "shared") if p.exists()), _HERE[2] / "shared")
    / "data"
    / "crypto"
)
ORDER_EVENTS = (IntentEmitted, SubmitOrder, AmendOrder, CancelOrder)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_json(store: Path, *args: str) -> dict:
    result = invoke("run", "--store", str(store), "--json", "--no-report", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def session_events(store: Path, session_id: str) -> list[bytes]:
    with EventStore(store) as s:
        return [encode(e) for _, e in read_session(s, session_id)]


def native_5m(one: CandleSeries) -> CandleSeries:
    """5m bars built independently of the resampler: reshape aligned 1m bars by five."""
    assert one.start_ms % 300_000 == 0 and len(one) % 5 == 0

    def rows(col: np.ndarray) -> np.ndarray:
        return col.reshape(-1, 5)

    return CandleSeries(
        one.instrument,
        "5m",
        open_ms=rows(one.open_ms)[:, 0],
        close_ms=rows(one.close_ms)[:, -1],
        open=rows(one.open)[:, 0],
        high=rows(one.high).max(axis=1),
        low=rows(one.low).min(axis=1),
        close=rows(one.close)[:, -1],
        volume=rows(one.volume).sum(axis=1),
        turnover=rows(one.turnover).sum(axis=1),
    )


# ------------------------------------------------------------------- one parser


def test_one_timeframe_parser_for_cards_files_and_the_engine() -> None:
    import adapters.historical as historical
    from engine import state, timeframes

    assert historical.timeframe_ms is timeframes.tf_ms
    assert timeframes.tf_ms("60") == timeframes.tf_ms("1h") == 3_600_000  # Bybit interval
    assert timeframes.tf_ms("D") == 86_400_000 and timeframes.tf_ms("30s") == 30_000
    assert timeframes.is_timeframe("15m") and not timeframes.is_timeframe("60")
    assert not timeframes.is_timeframe("30s")  # a card runs on minutes or slower
    with pytest.raises(timeframes.TimeframeError, match=r"'7x'.*expected e\.g\. 1m"):
        timeframes.tf_ms("7x")
    with pytest.raises(state.StateError, match="unknown timeframe '0m'"):
        state.timeframe_ms("0m")
    assert not (Path(historical.__file__).parent / "timeframes.py").exists()


# -------------------------------------------------------------------- resampling


def test_resampling_1m_gives_the_bars_of_native_5m_data() -> None:
    one = generate(seed=3, n=3000)
    five, done = resample(one, "5m")
    assert five.equals(native_5m(one))
    assert (done.source_timeframe, done.timeframe, done.bars, done.dropped) == ("1m", "5m", 600, 0)


def test_a_bar_the_data_covers_only_in_part_is_dropped_and_counted() -> None:
    one = generate(seed=3, n=3000).take(slice(2, 2998))  # starts and ends mid-bar
    five, done = resample(one, "5m")
    assert len(five) == 598 and done.dropped == 2
    assert five.start_ms == one.start_ms + 3 * 60_000  # the first complete bar


def test_coarser_or_misaligned_data_is_refused() -> None:
    five, _ = resample(generate(seed=3, n=600), "5m")
    with pytest.raises(DataError, match="coarser than the 1m bars"):
        resample(five, "1m")
    with pytest.raises(DataError, match="not a whole multiple of the 7m bars"):
        resample(five, "7m")


def test_resampled_1m_file_and_native_5m_file_give_the_same_orders(tmp_path: Path) -> None:
    one = generate(seed=11, n=12_000)
    write_csv(one, tmp_path / "one.csv")
    write_csv(native_5m(one), tmp_path / "five.csv")
    card = ma_cross_card(tmp_path, fast=5, slow=20, timeframe="5m")
    # The same session id in two stores: order link ids are derived from it.
    a = run_json(tmp_path / "a", str(card), "--data", str(tmp_path / "one.csv"), "--session", "s")
    b = run_json(tmp_path / "b", str(card), "--data", str(tmp_path / "five.csv"), "--session", "s")
    assert a["resampled"] == "resampled 1m -> 5m: 2400 bars" and b["resampled"] == ""
    with EventStore(tmp_path / "a") as s:
        orders_a = [encode(e) for _, e in read_session(s, "s") if isinstance(e, ORDER_EVENTS)]
    with EventStore(tmp_path / "b") as s:
        orders_b = [encode(e) for _, e in read_session(s, "s") if isinstance(e, ORDER_EVENTS)]
    assert len(orders_a) > 20 and a["trades"] > 5
    assert orders_a == orders_b
    # The venue sees the same 5m bars either way, so the whole log is the same (fills too).
    assert session_events(tmp_path / "a", "s") == session_events(tmp_path / "b", "s")
    assert a["fingerprint"] == b["fingerprint"]


def test_run_timeframe_runs_a_1m_card_at_5m_and_verify_agrees(tmp_path: Path) -> None:
    card = ma_cross_card(tmp_path, timeframe="1m")
    store = tmp_path / "runs"
    out = run_json(store, str(card), "--candles", "3000", "--timeframe", "5m", "--session", "s")
    assert out["candles"] == 600 and out["timeframe"] == "5m"
    with EventStore(store) as s:
        started = next(e for _, e in read_session(s, "s"))
    assert isinstance(started, SessionStarted) and started.timeframe == "5m"
    verified = invoke("verify", "s", "--store", str(store))
    assert verified.exit_code == 0, verified.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--timeframe", "7x"], "--timeframe is not a timeframe"),
        (["--timeframe", "30s"], "--timeframe is not a timeframe"),
    ],
)
def test_bad_timeframe_exits_2(tmp_path: Path, args: list[str], needle: str) -> None:
    card = ma_cross_card(tmp_path)
    result = invoke("run", str(card), "--store", str(tmp_path / "r"), "--candles", "600", *args)
    assert result.exit_code == 2 and needle in result.output, result.output
    assert "Traceback" not in result.output


def test_timeframe_slower_than_a_cards_higher_timeframe_exits_2(tmp_path: Path) -> None:
    card = tmp_path / "mtf.yaml"
    text = ma_cross_card(tmp_path).read_text()
    card.write_text(text.replace("execution: 1m", "execution: 5m\n  higher: [1h]"))
    result = invoke("run", str(card), "--store", str(tmp_path / "r"), "--timeframe", "1h")
    assert result.exit_code == 2, result.output
    assert "timeframes.higher[0]: --timeframe 1h does not divide" in result.output
    assert "mtf.yaml" in result.output and "Traceback" not in result.output


def test_coarser_file_than_the_card_exits_2(tmp_path: Path) -> None:
    five, _ = resample(generate(seed=3, n=600), "5m")
    write_csv(five, tmp_path / "five.csv")
    card = ma_cross_card(tmp_path, timeframe="1m")
    result = invoke(
        "run", str(card), "--store", str(tmp_path / "r"), "--data", str(tmp_path / "five.csv")
    )
    assert result.exit_code == 2, result.output
    assert "five.csv" in result.output and "coarser than the 1m bars" in result.output


def test_real_bybit_5m_resampled_is_the_bybit_15m_file() -> None:
    five_path = SHARED / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
    fifteen_path = SHARED / "bybit_linear_BTCUSDT_15m_20250403_20250702.csv"
    if not (five_path.exists() and fifteen_path.exists()):
        pytest.skip("../shared/data is not here (read in place, never copied)")
    five = load_candles(five_path, INST, drop_last_open=True)
    native = load_candles(fifteen_path, INST, drop_last_open=True)
    built, done = resample(five, "15m")
    assert done.dropped <= 2 and len(built) > 8000
    both, ia, ib = np.intersect1d(built.close_ms, native.close_ms, return_indices=True)
    assert len(both) >= len(native) - 2
    for name in ("open_ms", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(built, name)[ia], getattr(native, name)[ib]), name


# ------------------------------------------------------------------- file forms


def bars_text(
    n: int, *, step_s: int = 60, start: int = 1_704_067_200, daily: bool = False
) -> list[str]:
    """``n`` consistent bars as "stamp,open,high,low,close,volume" lines (UTC)."""
    import datetime as dt

    lines = []
    for i in range(n):
        when = dt.datetime.fromtimestamp(start + i * step_s, dt.UTC)
        stamp = when.strftime("%Y-%m-%d") if daily else when.isoformat(sep=" ")
        p = 42000 + i
        lines.append(f"{stamp},{p}.0,{p + 5}.5,{p - 3}.1,{p + 1}.2,{i % 7}.125")
    return lines


def check(path: Path, *args: str) -> Result:
    return invoke("data", "check", str(path), *args)


@pytest.mark.parametrize("first", ["", "index", "Unnamed: 0"])
def test_a_csv_as_pandas_writes_it_reads_and_says_which_column_is_time(
    tmp_path: Path, first: str
) -> None:
    path = tmp_path / "pandas.csv"
    path.write_text(f"{first},open,high,low,close,volume\n" + "\n".join(bars_text(30)) + "\n")
    notes: list[str] = []
    series = load_candles(path, INST, notes=notes)
    assert len(series) == 30 and series.timeframe == "1m"
    assert series.start_ms == 1_704_067_200_000 and series.close[0] == 420012
    assert notes == [
        "columns: time=column 1 (unnamed: an index), open='open', high='high', low='low', "
        "close='close', volume='volume'"
    ]
    out = check(path)
    assert out.exit_code == 0 and "time=column 1 (unnamed: an index)" in out.output, out.output


def test_date_only_stamps_are_daily_bars(tmp_path: Path) -> None:
    path = tmp_path / "daily.csv"
    path.write_text(
        ",open,high,low,close,volume\n" + "\n".join(bars_text(40, step_s=86_400, daily=True))
    )
    series = load_candles(path, INST)
    assert series.timeframe == "1d" and len(series) == 40
    assert series.close_ms[0] - series.open_ms[0] == 86_400_000
    assert series.open_ms[1] == 1_704_067_200_000 + 86_400_000


@pytest.mark.parametrize("index_name", [None, "when"])
def test_parquet_with_a_timestamp_index(tmp_path: Path, index_name: str | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 20
    start = 1_704_067_200_000_000_000
    stamps = pa.array([start + i * 300 * 10**9 for i in range(n)], pa.timestamp("ns", tz="UTC"))
    col = index_name or "__index_level_0__"
    table = pa.table(
        {
            "Open": [42000.0 + i for i in range(n)],
            "High": [42010.0 + i for i in range(n)],
            "Low": [41990.0 + i for i in range(n)],
            "Close": [42005.5 + i for i in range(n)],
            "Volume": [1.5] * n,
            col: stamps,
        }
    )
    meta = {b"pandas": json.dumps({"index_columns": [col], "columns": []}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "idx.parquet")
    notes: list[str] = []
    series = load_candles(tmp_path / "idx.parquet", INST, notes=notes)
    assert series.timeframe == "5m" and len(series) == n
    assert series.start_ms == start // 10**6 and series.close[-1] == 420245
    assert "time=" in notes[0] and "open='Open'" in notes[0]


# ----------------------------------------------------------- gaps and duplicates


def test_gap_filling_says_how_many_bars_it_filled(tmp_path: Path) -> None:
    lines = bars_text(30)
    del lines[20:22], lines[5]  # 3 missing bars in 2 gaps
    path = tmp_path / "gaps.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(lines))
    refused = check(path)
    assert refused.exit_code == 2 and "2 gap(s), 3 missing bar(s)" in refused.output
    out = check(path, "--gaps", "fill")
    assert out.exit_code == 0, out.output
    assert "filled 3 missing 1m bar(s) in 2 gap(s)" in out.output and "30 BTCUSDT 1m" in out.output


def test_dedupe_drops_exact_duplicate_rows_only(tmp_path: Path) -> None:
    lines = bars_text(30)
    path = tmp_path / "dup.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n" + "\n".join([*lines[:10], lines[9], *lines[10:]])
    )
    refused = check(path)
    assert refused.exit_code == 2 and "duplicate timestamp" in refused.output
    assert "--dedupe" in refused.output
    out = check(path, "--dedupe")
    assert out.exit_code == 0 and "dropped 1 exact duplicate row(s)" in out.output, out.output
    changed = lines[9].rsplit(",", 1)[0] + ",9.5"  # same time, another volume: not a copy
    path.write_text(
        "timestamp,open,high,low,close,volume\n" + "\n".join([*lines[:10], changed, *lines[10:]])
    )
    still = check(path, "--dedupe")
    assert still.exit_code == 2 and "line 12 (data row 11): duplicate timestamp" in still.output


def test_data_check_reports_every_problem_in_the_file(tmp_path: Path) -> None:
    lines = bars_text(40)
    lines[3] = lines[3].replace("42003.0,", "42003.05,", 1)  # open off the 0.1 grid
    lines[7] = lines[7].replace("42007.0,", "42007.03,", 1)  # and again
    parts = lines[12].split(",")
    parts[2] = "41000.0"  # high below open and close
    lines[12] = ",".join(parts)
    lines[20] = lines[20].rsplit(",", 1)[0] + ",-1"  # negative volume
    del lines[30:33]  # a gap of three bars
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(lines))
    out = check(path)
    assert out.exit_code == 2 and "Traceback" not in out.output
    text = out.output
    assert "4 kind(s) of problem" in text, text
    assert "line 5 (data row 4): open price is not on the tick grid: 2 row(s)" in text
    assert "(also line 9)" in text
    assert (
        "line 14 (data row 13): OHLC inconsistent: high is below max(open, close): 1 row(s)" in text
    )
    assert "line 22 (data row 21): volume is negative or not a number: 1 row(s)" in text
    assert "gap in the data; found 3 missing 1m bar(s)" in text
    assert "gap in the data" not in check(path, "--gaps", "skip").output
