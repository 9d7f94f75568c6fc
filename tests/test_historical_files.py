"""Reading candle files: formats, time stamps, and errors that name the file and row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.historical import (
    CandleSeries,
    DataError,
    load_candles,
    write_csv,
    write_parquet,
)
from engine.instrument import BTCUSDT, Instrument

INST = Instrument(BTCUSDT)
T0 = 1_743_465_600_000  # 2025-04-01 00:00 UTC
GOOD = [  # open, high, low, close, volume
    ("81794.8", "81998.1", "81785.2", "81804.9", "317.956"),
    ("81804.9", "81898.3", "81714.5", "81800.3", "128.285"),
    ("81800.3", "81900.0", "81636.5", "81735.9", "12.5"),
    ("81735.9", "82109.2", "81588.3", "82060.1", "0"),
]


def write(tmp_path: Path, text: str, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def csv_text(times: list[str], header: str = "timestamp,open,high,low,close,volume") -> str:
    lines = [header] if header else []
    lines += [",".join((t, *GOOD[i % len(GOOD)])) for i, t in enumerate(times)]
    return "\n".join(lines) + "\n"


def minutes(n: int, step: int = 1) -> list[int]:
    return [T0 + i * step * 60_000 for i in range(n)]


# ------------------------------------------------------------------ time formats


@pytest.mark.parametrize(
    ("header", "times"),
    [
        ("timestamp", [str(t) for t in minutes(4)]),  # epoch ms
        ("time", [str(t // 1000) for t in minutes(4)]),  # epoch s
        ("open_time", [f"2025-04-01 00:0{i}:00" for i in range(4)]),  # naive = UTC
        ("datetime", [f"2025-04-01T00:0{i}:00Z" for i in range(4)]),
        ("Date", [f"2025-04-01 02:0{i}:00+02:00" for i in range(4)]),  # offset applied
        ("Open Time", [f"2025-04-01T00:0{i}:00.000+00:00" for i in range(4)]),
    ],
)
def test_time_formats_all_mean_the_same_bars(tmp_path: Path, header: str, times: list[str]) -> None:
    path = write(tmp_path, csv_text(times, f"{header},open,high,low,close,volume"))
    series = load_candles(path, INST)
    assert series.open_ms.tolist() == minutes(4)
    assert series.timeframe == "1m"
    assert series.open[0] == 817948 and series.volume[0] == 317956


def test_no_header_means_bybit_column_order(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text([str(t) for t in minutes(3)], header=""))
    series = load_candles(path, INST)
    assert len(series) == 3 and series.close[2] == 817359


def test_start_and_end_stamps(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text([str(t) for t in minutes(4, step=5)]))
    start = load_candles(path, INST)
    end = load_candles(path, INST, stamps="end")
    assert start.timeframe == end.timeframe == "5m"
    assert start.open_ms[0] == T0 and start.close_ms[0] == T0 + 300_000
    assert end.close_ms[0] == T0 and end.open_ms[0] == T0 - 300_000
    assert [e.ts for e in end.events()] == minutes(4, step=5)


def test_explicit_timeframe_overrides_inference(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text([str(t) for t in minutes(4, step=5)]))
    with pytest.raises(DataError, match="gap"):
        load_candles(path, INST, timeframe="1m")
    assert len(load_candles(path, INST, timeframe="1m", gaps="fill")) == 16


# ------------------------------------------------------------------------ errors


def assert_names(err: pytest.ExceptionInfo[DataError], path: Path, line: int, *words: str) -> None:
    msg = str(err.value)
    assert str(path) in msg, msg
    assert f"line {line} " in msg, msg
    assert err.value.line == line
    for word in words:
        assert word in msg, msg


def test_malformed_row_names_its_line(tmp_path: Path) -> None:
    text = csv_text([str(t) for t in minutes(4)]).splitlines()
    text[3] = text[3].rsplit(",", 1)[0]  # line 4 lost its volume
    path = write(tmp_path, "\n".join(text) + "\n")
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, 4, "columns")


def test_non_numeric_price_names_its_line(tmp_path: Path) -> None:
    text = csv_text([str(t) for t in minutes(4)]).replace("81800.3,81900.0", "81800.3,abc")
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, 4, "high", "'abc'")


def test_unsorted_names_the_row(tmp_path: Path) -> None:
    t = minutes(4)
    path = write(tmp_path, csv_text([str(x) for x in (t[0], t[2], t[1], t[3])]))
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, 4, "not sorted")


def test_duplicate_names_the_row(tmp_path: Path) -> None:
    t = minutes(4)
    path = write(tmp_path, csv_text([str(x) for x in (t[0], t[1], t[1], t[2])]))
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, 4, "duplicate", "row 2")


def test_inconsistent_ohlc_names_the_row(tmp_path: Path) -> None:
    text = csv_text([str(t) for t in minutes(4)]).replace("82109.2", "81999.0")  # high < close
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, 5, "OHLC inconsistent", "high")


def test_negative_volume_names_the_row(tmp_path: Path) -> None:
    text = csv_text([str(t) for t in minutes(4)]).replace("128.285", "-1")
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, 3, "volume")


def test_gap_fails_names_the_row_and_size_then_fill_and_skip(tmp_path: Path) -> None:
    t = minutes(6)
    path = write(tmp_path, csv_text([str(x) for x in (t[0], t[1], t[4], t[5])]))
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, 4, "gap", "2 missing 1m bar(s)", "--gaps")
    filled = load_candles(path, INST, gaps="fill")
    assert filled.open_ms.tolist() == t
    assert filled.close[2] == filled.open[2] == filled.high[3] == filled.close[1]
    assert filled.volume.tolist()[2:4] == [0, 0]
    assert filled.open[4] == 818003  # the real bar after the hole is untouched
    skipped = load_candles(path, INST, gaps="skip")
    assert skipped.open_ms.tolist() == [t[0], t[1], t[4], t[5]]


def test_off_grid_bar_fails_under_every_policy(tmp_path: Path) -> None:
    t = minutes(4)
    path = write(tmp_path, csv_text([str(x) for x in (t[0], t[1], t[2] + 30_000, t[3])]))
    for gaps in ("fail", "fill", "skip"):
        with pytest.raises(DataError, match="off the 1m grid"):
            load_candles(path, INST, gaps=gaps, timeframe="1m")


def test_missing_column_and_empty_and_unknown_files(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,open,high,low,close\n1,2,3,4,5\n")
    with pytest.raises(DataError, match=r"lacks column.*volume"):
        load_candles(path, INST)
    with pytest.raises(DataError, match="empty"):
        load_candles(write(tmp_path, "\n", "e.csv"), INST)
    with pytest.raises(DataError, match="not found"):
        load_candles(tmp_path / "nope.csv", INST)
    with pytest.raises(DataError, match="unknown file type"):
        load_candles(write(tmp_path, "x", "c.xlsx"), INST)


def test_off_tick_price_is_reported_not_rounded(tmp_path: Path) -> None:
    text = csv_text([str(t) for t in minutes(4)]).replace("81804.9,81898.3", "81804.95,81898.3")
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, 3, "tick grid", "81804.95")


def test_volume_rounds_half_even_to_lots(tmp_path: Path) -> None:
    vols = ["0.0005", "0.0015", "0.0025", "1.23449"]
    lines = ["t,open,high,low,close,volume"]
    lines += [f"{t},1,1,1,1,{v}" for t, v in zip(minutes(4), vols)]
    series = load_candles(write(tmp_path, "\n".join(lines)), INST)
    assert series.volume.tolist() == [0, 2, 2, 1234]


# ------------------------------------------------------------------ bybit json


def kline_json(rows: list[list[str]]) -> dict[str, object]:
    return {
        "retCode": 0,
        "retMsg": "OK",
        "result": {"symbol": "BTCUSDT", "category": "linear", "list": rows},
        "retExtInfo": {},
        "time": T0 + 10 * 60_000,
    }


def newest_first(n: int) -> list[list[str]]:
    rows = [[str(t), *GOOD[i % 4], "1000.5"] for i, t in enumerate(minutes(n))]
    return rows[::-1]


def test_bybit_json_is_read_newest_first(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(kline_json(newest_first(4))), "k.json")
    series = load_candles(path, INST)
    assert series.open_ms.tolist() == minutes(4)
    assert series.open[0] == 817948
    assert series.turnover.tolist() == [100_050_000_000] * 4


def test_bybit_json_errors_name_the_list_item(tmp_path: Path) -> None:
    rows = newest_first(4)
    rows[1][2] = "1"  # item 2 in the file: high below open
    path = write(tmp_path, json.dumps(kline_json(rows)), "k.json")
    with pytest.raises(DataError, match=r"k\.json: result\.list item 2: OHLC inconsistent"):
        load_candles(path, INST)
    err = {"retCode": 10001, "retMsg": "params error", "result": {}}
    with pytest.raises(DataError, match="retCode 10001"):
        load_candles(write(tmp_path, json.dumps(err), "e.json"), INST)


def test_the_reference_sample_parses(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    sample = sample / "bybit-samples" / "rest-market-kline.json"
    if not sample.exists():
        pytest.skip(f"{sample} not present")
    inverse = Instrument(BTCUSDT.__class__(symbol="BTCUSD", tick_size="0.5", qty_step="1",
                                           min_qty="1"))  # fmt: skip
    series = load_candles(sample, inverse)
    assert series.timeframe == "1h" and len(series) == 3
    assert series.open_ms.tolist() == [1670601600000, 1670605200000, 1670608800000]
    assert series.close[-1] == 34111  # 17055.5 / 0.5


# --------------------------------------------------------------------- parquet


def small_series(n: int = 50) -> CandleSeries:
    from adapters.historical import generate

    return generate(seed=3, n=n)


def test_parquet_round_trip_is_exact(tmp_path: Path) -> None:
    series = small_series()
    path = tmp_path / "c.parquet"
    write_parquet(series, path)
    back = load_candles(path, INST)
    assert back.equals(series)


def test_foreign_parquet_reads_like_a_csv(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "Datetime": pa.array(np.array(minutes(4), dtype="datetime64[ms]")),
            "Open": [float(r[0]) for r in GOOD],
            "High": [float(r[1]) for r in GOOD],
            "Low": [float(r[2]) for r in GOOD],
            "Close": [float(r[3]) for r in GOOD],
            "Volume": [float(r[4]) for r in GOOD],
        }
    )
    pq.write_table(table, tmp_path / "f.parquet")
    series = load_candles(tmp_path / "f.parquet", INST)
    assert series.open_ms.tolist() == minutes(4) and series.high[3] == 821092


def test_our_csv_round_trip_is_exact(tmp_path: Path) -> None:
    series = small_series()
    write_csv(series, tmp_path / "ours.csv")
    assert load_candles(tmp_path / "ours.csv", INST).equals(series)


# ------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 10**7),  # open ticks
            st.integers(1, 10**7),  # close ticks
            st.integers(0, 10**5),  # wick ticks
            st.integers(0, 10**9),  # volume lots
        ),
        min_size=2,
        max_size=30,
    )
)
def test_csv_text_to_ticks_is_exact(tmp_path_factory: pytest.TempPathFactory, bars) -> None:
    """Decimal text on the grid always comes back as the same integers."""
    path = tmp_path_factory.mktemp("p") / "p.csv"
    lines = ["open_time,open,high,low,close,volume"]
    for i, (o, c, w, v) in enumerate(bars):
        h, lo = max(o, c) + w, max(1, min(o, c) - w)
        prices = ",".join(INST.ticks_to_price(x) for x in (o, h, lo, c))
        lines.append(f"{T0 + i * 60_000},{prices},{INST.lots_to_qty(v)}")
    path.write_text("\n".join(lines) + "\n")
    series = load_candles(path, INST)
    assert series.open.tolist() == [b[0] for b in bars]
    assert series.close.tolist() == [b[1] for b in bars]
    assert series.volume.tolist() == [b[3] for b in bars]


def test_between_selects_by_time() -> None:
    series = small_series(10)
    part = series.between(series.open_ms[2], series.close_ms[5])
    assert part.open_ms.tolist() == series.open_ms[2:6].tolist()
    assert len(series.between(series.end_ms + 1)) == 0
    assert len(series.between(None, series.close_ms[0])) == 1


@pytest.mark.parametrize("rows_before", [2, 40_000])  # inside / after pyarrow's first block
def test_bad_time_value_names_its_line(tmp_path: Path, rows_before: int) -> None:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{t},1,1,1,1,1" for t in minutes(rows_before)]
    lines.append("soon,1,1,1,1,1")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_candles(path, INST)
    assert_names(err, path, rows_before + 2, "time value", "'soon'")


def test_end_stamps_on_the_last_millisecond_mean_the_bar_end(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text([str(t + 59_999) for t in minutes(4)]))
    series = load_candles(path, INST, stamps="end")
    assert series.close_ms.tolist() == [t + 60_000 for t in minutes(4)]
    assert series.open_ms.tolist() == minutes(4)


@pytest.mark.parametrize(("tick", "step"), [("0.5", "1"), ("0.01", "0.01"), ("0.0001", "10")])
def test_our_csv_round_trip_on_other_grids(tmp_path: Path, tick: str, step: str) -> None:
    from adapters.historical import generate

    spec = BTCUSDT.__class__(symbol="XUSDT", tick_size=tick, qty_step=step, min_qty=step)
    series = generate(seed=2, n=300, instrument=spec, start_price="3.5")
    write_csv(series, tmp_path / "g.csv")
    assert load_candles(tmp_path / "g.csv", spec).equals(series)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.sampled_from(["start", "end"]))
def test_fill_makes_a_regular_series_that_keeps_every_real_bar(
    holes: list[int], stamps: str
) -> None:
    """Random holes: "fill" inserts exactly the missing bars, flat at the previous close."""
    from adapters.historical import build_series
    from adapters.historical.raw import RawCandles

    times, t = [], T0
    for gap in holes:
        times.append(t)
        t += (gap + 1) * 60_000
    n = len(times)
    price = np.arange(1, n + 1, dtype=np.float64) * 100.0
    raw = RawCandles("mem", np.array(times, dtype=np.int64), price, price + 1, price - 1, price,
                     np.ones(n))  # fmt: skip
    series = build_series(raw, INST, timeframe="1m", gaps="fill", stamps=stamps)
    assert len(series) == times[-1] // 60_000 - T0 // 60_000 + 1
    assert np.all(np.diff(series.open_ms) == 60_000)
    shift = 0 if stamps == "start" else -60_000
    real = np.isin(series.open_ms, np.array(times) + shift)
    assert int(real.sum()) == n
    assert series.close[real].tolist() == (price * 10).astype(np.int64).tolist()
    filled = np.flatnonzero(~real)
    assert np.all(series.volume[filled] == 0)
    assert np.all(series.open[filled] == series.close[filled - 1])
    assert np.all(series.high[filled] == series.close[filled])


def test_exact_parquet_refuses_another_grid(tmp_path: Path) -> None:
    series = small_series(10)
    write_parquet(series, tmp_path / "c.parquet")
    other = BTCUSDT.__class__(symbol="BTCUSDT", tick_size="0.01", qty_step="0.001", min_qty="1")
    with pytest.raises(DataError, match="another price/qty grid"):
        load_candles(tmp_path / "c.parquet", other)
    with pytest.raises(DataError, match="timeframe differs"):
        load_candles(tmp_path / "c.parquet", INST, timeframe="5m")


@given(st.integers(1, 10_000), st.sampled_from(["s", "m", "h", "d"]))
def test_timeframe_labels_round_trip(n: int, unit: str) -> None:
    from adapters.historical import timeframe_label, timeframe_ms

    ms = timeframe_ms(f"{n}{unit}")
    assert timeframe_ms(timeframe_label(ms)) == ms
    assert ms == n * {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]
