"""`replay data fetch` end to end against a kline server on 127.0.0.1.

The server speaks Bybit's /v5/market/kline format (newest first, 7-string arrays,
start/end inclusive, limit) over a slice of the real 5m file (or, when the shared
data is absent, of the built-in generator). pybit is the real client.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import CliRunner

from adapters.historical import load_candles
from adapters.historical.bybit_fetch import fetch_klines
from adapters.historical.errors import FetchError
from adapters.historical.pacing import TokenBucket
from engine.instrument import BTCUSDT
from replay.commands.data import data

REAL_5M = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "crypto"
    / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
)
TF = 300_000
N = 2_500  # more than two pages of 1000


def source_rows() -> list[list[str]]:
    """N consecutive 5m candles as Bybit strings [start, o, h, l, c, volume, turnover]."""
    rows: list[list[str]] = []
    if REAL_5M.exists():
        with open(REAL_5M, newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for cells in reader:
                ts = dt.datetime.fromisoformat(cells[0]).timestamp()
                turnover = f"{float(cells[5]) * float(cells[4]):.4f}"
                rows.append([str(int(ts) * 1000), *cells[1:6], turnover])
                if len(rows) == N:
                    break
        return rows
    from adapters.historical import generate, write_csv

    series = generate(seed=4, n=N * 5)
    # 1m bars stand in for 5m ones: only the stamps need the 5m spacing.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_csv(series.take(slice(0, N)), Path(tmp) / "s.csv")
        with open(Path(tmp) / "s.csv", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for i, cells in enumerate(reader):
                rows.append([str(1_743_699_900_000 + i * TF), *cells[1:7]])
    return rows


class KlineServer:
    """A ThreadingHTTPServer holding the rows, the server clock and a request log."""

    def __init__(self, rows: list[list[str]], *, overlap: bool = False) -> None:
        self.rows = rows
        self.overlap = overlap  # answer one candle past `end`, as overlapping pages would
        self.now_ms = int(rows[-1][0]) + TF // 2  # the last candle is still open
        self.requests: list[tuple[float, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                server.requests.append((time.monotonic(), query))
                status, body = server.answer(url.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Bapi-Limit", "600")
                self.send_header("X-Bapi-Limit-Status", "599")
                self.send_header("X-Bapi-Limit-Reset-Timestamp", str(server.now_ms + 1000))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, q: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path != "/v5/market/kline":
            return 404, {}
        envelope: dict[str, Any] = {"retExtInfo": {}, "time": self.now_ms}
        if q.get("symbol") != "BTCUSDT":
            return 200, {
                **envelope,
                "retCode": 10001,
                "retMsg": "params error: symbol invalid",
                "result": {},
            }
        start = int(q.get("start", 0))
        end = int(q.get("end", self.now_ms)) + (TF if self.overlap else 0)
        limit = int(q.get("limit", 200))
        picked = [r for r in self.rows if start <= int(r[0]) <= end][::-1][:limit]
        result = {"symbol": "BTCUSDT", "category": q.get("category", "linear"), "list": picked}
        return 200, {**envelope, "retCode": 0, "retMsg": "OK", "result": result}


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return source_rows()


@pytest.fixture
def server(rows: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> Iterator[KlineServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    srv = KlineServer(rows)
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def fetch_cli(server: KlineServer, out: Path, *extra: str, start: int, end: int) -> Any:
    args = ["fetch", "BTCUSDT", "--interval", "5", "--start", iso(start), "--end", iso(end)]
    args += ["--out", str(out), "--base-url", server.url, *extra]
    return CliRunner().invoke(data, args)


def test_fetch_paginates_and_writes_the_source_slice(
    server: KlineServer, rows: list[list[str]], tmp_path: Path
) -> None:
    out = tmp_path / "k.csv"
    first, last = int(rows[0][0]), int(rows[-1][0])
    result = fetch_cli(server, out, "--rate", "50", start=first, end=last + TF)
    assert result.exit_code == 0, result.output
    assert f"{N}/{N} candles, 3 requests" in result.stderr  # progress, on stderr
    assert f"wrote {N - 1} candles" in result.stderr and result.stdout == ""
    lines = out.read_text().splitlines()
    assert lines[0] == "open_time,open,high,low,close,volume,turnover"
    # Every closed candle of the slice, oldest first, exactly as served; the last
    # candle was still open by the server's clock and is dropped.
    assert lines[1:] == [",".join(r) for r in rows[:-1]]
    assert len(server.requests) == 3  # 2,500 candles in pages of 1000
    assert [q["limit"] for _, q in server.requests] == ["1000"] * 3
    ends = [int(q["end"]) for _, q in server.requests]
    assert ends == sorted(ends, reverse=True)  # paging backwards
    series = load_candles(out, BTCUSDT)
    assert len(series) == N - 1 and series.timeframe == "5m"
    assert series.start_ms == first and series.end_ms == last


def test_overlapping_pages_are_deduplicated(
    rows: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    srv = KlineServer(rows, overlap=True)
    srv.thread.start()
    try:
        got = fetch_klines(
            "BTCUSDT", "5", int(rows[0][0]), int(rows[1_500][0]), base_url=srv.url, rate=100
        )
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
    stamps = [int(r[0]) for r in got]
    assert stamps == [int(r[0]) for r in rows[:1_500]]


def test_requests_are_paced_by_the_token_bucket(
    server: KlineServer, rows: list[list[str]], tmp_path: Path
) -> None:
    # --rate 2: a burst of 2, then one request every 0.5 s.
    result = fetch_cli(
        server, tmp_path / "k.csv", "--rate", "2", "-q", start=int(rows[0][0]), end=int(rows[-1][0])
    )
    assert result.exit_code == 0, result.output
    times = [t for t, _ in server.requests]
    assert len(times) == 3
    assert times[2] - times[0] >= 0.45


def test_token_bucket_waits_rather_than_fails() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    bucket = TokenBucket(rate=4, burst=2, clock=lambda: clock[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:2] == [0.0, 0.0]
    assert all(w == pytest.approx(0.25) for w in waits[2:])
    assert clock[0] == pytest.approx(1.0)  # 6 requests: 2 at once, then 4 per second


def test_bad_symbol_exits_2_with_bybit_message(server: KlineServer, tmp_path: Path) -> None:
    args = ["fetch", "NOPEUSDT", "--start", "2025-04-05", "--end", "2025-04-06"]
    args += ["--out", str(tmp_path / "x.csv"), "--base-url", server.url]
    bad = CliRunner().invoke(data, args)
    assert bad.exit_code == 2
    assert "10001" in bad.output and "symbol invalid" in bad.output
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["BTC/USDT", "--start", "2025-04-01", "--end", "2025-04-02"], "symbol"),
        (["BTCUSDT", "--start", "2025-13-01", "--end", "2025-04-02"], "--start"),
        (["BTCUSDT", "--start", "2025-04-02", "--end", "2025-04-01"], "after"),
        (
            ["BTCUSDT", "--interval", "7", "--start", "2025-04-01", "--end", "2025-04-02"],
            "--interval",
        ),
    ],
)
def test_bad_input_exits_2_before_any_request(args: list[str], words: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        data, ["fetch", *args, "--out", str(tmp_path / "x.csv"), "--base-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2, result.output
    assert words in result.output


def test_unreachable_host_is_a_clear_fetch_error() -> None:
    with pytest.raises(FetchError, match="cannot reach"):
        fetch_klines(
            "BTCUSDT", "1", 1_743_465_600_000, 1_743_552_000_000, base_url="http://127.0.0.1:9"
        )


def test_data_check_as_a_real_subprocess(
    server: KlineServer, rows: list[list[str]], tmp_path: Path
) -> None:
    import subprocess
    import sys

    out = tmp_path / "k.csv"
    assert fetch_cli(server, out, "-q", start=int(rows[0][0]), end=int(rows[100][0])).exit_code == 0
    code = "from replay.commands.data import data; data()"
    ok = subprocess.run(
        [sys.executable, "-c", code, "check", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and "100 BTCUSDT 5m candles" in ok.stdout
    lines = out.read_text().splitlines()
    lines[50], lines[51] = lines[51], lines[50]
    out.write_text("\n".join(lines) + "\n")
    bad = subprocess.run(
        [sys.executable, "-c", code, "check", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert bad.returncode == 2
    assert "line 52" in bad.stderr and "not sorted" in bad.stderr
    assert "Traceback" not in bad.stderr
