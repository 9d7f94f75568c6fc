"""The fixed costs of ``replay run`` (reading the CSV, the summary, the report) made cheaper
without changing what comes out: the same columns, the same errors, the same files."""

from __future__ import annotations

import csv
import html
import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

import replay.report as report
from adapters.historical import DataError, load_candles
from adapters.historical.columns import numbers
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument
from projections.metrics import max_drawdown, max_drawdown_duration
from replay.cli import cli
from replay.report_chart import _drawdown_pct, _dt
from replay.report_trades import TradeRow, csv_lines, trade_table

ROOT = Path(__file__).resolve().parents[1]
INSTR = Instrument(BTCUSDT)
HEADER = "open_time,open,high,low,close,volume\n"


def _rows(n: int, start: int = 1_704_067_200_000) -> str:
    lines = []
    for i in range(n):
        o = 40_000 + i % 7
        lines.append(f"{start + i * 60_000},{o}.5,{o + 3}.0,{o - 2}.1,{o + 1}.2,{i % 5}.25")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the CSV reader


@pytest.mark.parametrize("kind", [pa.int64(), pa.int32(), pa.uint16(), pa.float64()])
def test_numbers_equal_pyarrow_conversion_over_chunks_and_slices(kind: pa.DataType) -> None:
    rng = np.random.default_rng(5)
    chunks = [pa.array(rng.integers(0, 60_000, size), type=kind) for size in (0, 7, 1000, 33)]
    column = pa.chunked_array([c.slice(1) if len(c) > 2 else c for c in chunks], type=kind)
    for dtype in (np.int64, np.float64):
        got = numbers(column, dtype)
        assert got.dtype == dtype and got.flags.writeable
        np.testing.assert_array_equal(got, np.asarray(column, dtype=dtype))
    one = chunks[2].slice(10, 50)  # a plain array with an offset
    np.testing.assert_array_equal(numbers(one, np.float64), np.asarray(one, dtype=np.float64))


def test_numbers_with_nulls_or_other_types_take_pyarrow_conversion() -> None:
    with_null = pa.array([1.5, None, 3.0])
    np.testing.assert_array_equal(numbers(with_null, np.float64), [1.5, np.nan, 3.0])
    assert len(numbers(pa.chunked_array([], type=pa.int64()), np.int64)) == 0


def test_reading_an_epoch_csv_imports_neither_pandas_nor_compute(tmp_path: Path) -> None:
    """pyarrow's own column conversion imports pandas (0.2 s of CPU and 300 modules);
    pyarrow.compute and pyarrow.parquet are only needed for other time formats and files."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER + _rows(50))
    code = (
        "import sys\n"
        "from adapters.historical import load_candles\n"
        "from engine.instrument import BTCUSDT\n"
        f"s = load_candles({str(path)!r}, BTCUSDT)\n"
        "assert len(s) == 50, len(s)\n"
        "print(sorted(m for m in ('pandas', 'pyarrow.compute', 'pyarrow.parquet') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_iso_and_epoch_times_read_alike(tmp_path: Path) -> None:
    epoch, iso = tmp_path / "e.csv", tmp_path / "i.csv"
    body = _rows(40)
    epoch.write_text(HEADER + body)
    lines = []
    for line in body.splitlines():
        ms, rest = line.split(",", 1)
        stamp = datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},{rest}")
    iso.write_text(HEADER + "\n".join(lines) + "\n")
    assert load_candles(epoch, BTCUSDT).equals(load_candles(iso, BTCUSDT))


@pytest.mark.parametrize(
    ("row", "what", "line"),
    [
        ("1704067200000,1.0,2.0,0.5,,3", "empty close value", 4),
        ("1704067200000,1.0,2.0,0.5,x,3", "close is not a number", 4),
        ("yesterday,1.0,2.0,0.5,1.5,3", "time value not understood", 4),
    ],
)
def test_a_bad_row_is_still_named_with_exit_2(
    tmp_path: Path, row: str, what: str, line: int
) -> None:
    good = _rows(2).splitlines()
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\n".join([*good, row, *_rows(3, 1_704_100_000_000).splitlines()]))
    with pytest.raises(DataError) as caught:
        load_candles(path, BTCUSDT)
    assert what in str(caught.value) and f"line {line}" in str(caught.value), str(caught.value)
    result = CliRunner().invoke(
        cli, ["run", "--data", str(path), "--store", str(tmp_path / "runs"), "-q"]
    )
    assert result.exit_code == 2, result.output
    assert what in result.output and "Traceback" not in result.output


# ----------------------------------------------------------------------- the report


def test_chart_times_are_the_text_plotly_writes_for_a_datetime() -> None:
    rng = np.random.default_rng(3)
    ms = np.concatenate([rng.integers(0, 4_000_000_000_000, 500), [0, 999, 60_000]])
    ms[:100] -= ms[:100] % 1000  # whole seconds: no fraction in isoformat
    want = [datetime.fromtimestamp(int(t) / 1000, tz=UTC).isoformat() for t in ms]
    assert _dt(ms) == want
    assert _dt(np.zeros(0, np.int64)) == []


def test_drawdowns_in_place_equal_the_plain_formulas() -> None:
    rng = np.random.default_rng(8)
    equity = np.cumsum(rng.integers(-5_000, 5_100, 3_000)).astype(np.int64)
    equity[:5] = [0, -3, 0, 2, 1]  # a peak that is not positive yields 0
    values = equity.astype(np.float64)
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        plain = np.where(peaks > 0, (values - peaks) / peaks * 100.0, 0.0)
        plain_max = float(np.where(peaks > 0, (peaks - values) / peaks, 0.0).max())
    assert _drawdown_pct(equity).tobytes() == plain.tobytes()
    assert max_drawdown(equity) == plain_max
    ts = np.arange(len(equity), dtype=np.int64) * 60_000
    at_peak = equity >= np.maximum.accumulate(equity)
    idx = np.maximum.accumulate(np.where(at_peak, np.arange(len(equity)), 0))
    under = ~at_peak[:-1] | ~at_peak[1:]
    assert max_drawdown_duration(ts, equity) == int((ts[1:][under] - ts[idx[:-1][under]]).max())


def _trade_rows() -> list[TradeRow]:
    t0 = 1_704_067_200_000
    rows = [
        TradeRow(1, "long", t0, 4_000_000.5, t0 + 5 * 60_000, 4_000_100.0, 100, 12 * MONEY_SCALE,
                 3, 0, "buy <&'\">", "stop", mae=-7, mfe=9, mae_pct=-0.001, mfe_pct=0.25),
        TradeRow(2, "short", t0 + 61_234, 4_000_000.0, t0 + 3_600_000, 3_999_000.0, 2_500,
                 -5 * MONEY_SCALE, 1, -2, "", "end of data", open_at_end=True),
        TradeRow(3, "long", t0, 1.0, t0, 1.0, 1, 0, 0, 0, "buy <&'\">", "a&b"),
    ]  # fmt: skip
    return rows


def _plain_table(rows: list[TradeRow], instr: Instrument) -> tuple[list[list[Any]], str]:
    """trades.csv lines and table rows by the plain rule: every cell formatted on its own,
    every cell escaped (what the report wrote before it was made cheaper)."""

    def minute(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")

    d = instr.price_decimals + 2
    lines: list[list[Any]] = []
    body: list[str] = []
    for r in rows:
        v: list[Any] = [
            r.n, r.side, minute(r.entry_ts), f"{instr.ticks_to_float(r.entry_price):.{d}f}",
            minute(r.exit_ts), f"{instr.ticks_to_float(r.exit_price):.{d}f}",
            instr.lots_to_qty(r.lots), f"{r.pnl / MONEY_SCALE:.8f}", f"{r.fees / MONEY_SCALE:.8f}",
            f"{r.funding / MONEY_SCALE:.8f}", f"{(r.exit_ts - r.entry_ts) / 60_000:g}",
            r.opened_by, r.close_reason, f"{r.mae / MONEY_SCALE:.8f}",
            f"{r.mfe / MONEY_SCALE:.8f}", f"{r.mae_pct:.6f}", f"{r.mfe_pct:.6f}",
        ]  # fmt: skip
        lines.append(v)
        cells = [
            (r.n, str(r.n)), (r.side, r.side), (r.entry_ts, v[2]), (float(v[3]), v[3]),
            (r.exit_ts, v[4] + (" (open)" if r.open_at_end else "")), (float(v[5]), v[5]),
            (r.lots, str(v[6])), (r.pnl, f"{r.pnl / MONEY_SCALE:,.2f}"),
            (r.fees, f"{r.fees / MONEY_SCALE:,.2f}"),
            (r.funding, f"{r.funding / MONEY_SCALE:,.2f}"),
            (r.exit_ts - r.entry_ts, v[10]), (r.opened_by, r.opened_by),
            (r.close_reason, r.close_reason), (r.mae, f"{r.mae / MONEY_SCALE:,.2f}"),
            (r.mfe, f"{r.mfe / MONEY_SCALE:,.2f}"), (r.mae_pct, f"{r.mae_pct:.2%}"),
            (r.mfe_pct, f"{r.mfe_pct:.2%}"),
        ]  # fmt: skip
        tds = "".join(
            f"<td data-v='{html.escape(str(k), quote=True)}'>{html.escape(t)}</td>"
            for k, t in cells
        )
        body.append(f"<tr>{tds}</tr>")
    return lines, "".join(body)


def test_trade_lines_and_table_equal_the_plain_rule() -> None:
    rows = _trade_rows()
    instr = Instrument(BTCUSDT)
    lines, body = _plain_table(rows, instr)
    assert csv_lines(rows, instr) == lines
    page = "".join(trade_table(rows, csv_lines(rows, instr), "USD<T>"))
    assert body in page
    assert "money in USD&lt;T&gt;" in page and "buy <&" not in page


def test_equity_csv_written_in_pieces_is_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "runs"
    args = ["run", "--candles", "3000", "--store", str(store), "--session", "s", "-q"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    whole = (store / "reports" / "s" / "equity.csv").read_bytes()
    assert len(whole.splitlines()) == 3001
    monkeypatch.setattr(report, "EQUITY_ROWS", 7)
    args = ["report", "s", "--store", str(store), "--out", str(tmp_path / "again")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again" / "equity.csv").read_bytes() == whole
    rows = list(csv.reader(io.StringIO(whole.decode())))
    assert rows[0] == ["time_ms", "equity", "close", "position"] and len(rows[1]) == 4
