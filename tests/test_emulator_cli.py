"""``python -m tools.bybit_emulator`` as a separate process: the JSON line, serving, playback
at the requested speed, control over HTTP, and a clean exit on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from pybit.unified_trading import HTTP

from tests.conftest import CANDLE_FILE
from tools.bybit_emulator import DEFAULT_API_KEY, DEFAULT_API_SECRET

REPO = Path(__file__).resolve().parents[1]


def test_standalone_emulator_prints_urls_and_serves() -> None:
    if not CANDLE_FILE.exists():
        pytest.skip(f"real candle data absent: {CANDLE_FILE}")
    cmd = [
        sys.executable,
        "-m",
        "tools.bybit_emulator",
        "--candles",
        str(CANDLE_FILE),
        "--speed",
        "20",
        "--history",
        "10",
        "--balance",
        "2500",
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        assert set(urls) == {"rest", "ws_public", "ws_private", "ws_trade"}
        assert urls["rest"].startswith("http://127.0.0.1:")
        port = urls["rest"].rsplit(":", 1)[1]
        assert urls["ws_public"] == f"ws://127.0.0.1:{port}/v5/public/linear"
        assert urls["ws_private"] == f"ws://127.0.0.1:{port}/v5/private"

        http = HTTP(api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET, retry_delay=0)
        http.endpoint = urls["rest"]
        wallet = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
        assert wallet["totalWalletBalance"] == "2500"
        # Time moves by itself at 20 candles per second.
        first = requests.get(f"{urls['rest']}/_emulator/state", timeout=10).json()["cursor"]
        time.sleep(0.6)
        later = requests.get(f"{urls['rest']}/_emulator/state", timeout=10).json()["cursor"]
        assert later > first >= 10
        step = requests.post(f"{urls['rest']}/_emulator/step", json={"n": 2}, timeout=10).json()
        assert step["played"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_standalone_emulator_refuses_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\nnot-a-time,1,2,3,4,5\n")
    cmd = [sys.executable, "-m", "tools.bybit_emulator", "--candles", str(bad)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "bad.csv" in done.stderr and done.stdout == ""
