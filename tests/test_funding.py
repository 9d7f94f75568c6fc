"""Funding is on: 0.01 % every 8 h by default, real rates with ``--funding FILE``, none for an
instrument that is not a perpetual; ``replay data fetch --funding`` downloads the history
(against the emulator's ``/v5/market/funding/history``); the summary says what applied.

Amounts are worked out by hand from Bybit's rule: funding = position value x rate, paid by
longs when the rate is positive (here valued at the settling bar's close).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapters.historical import generate
from adapters.historical.funding import load_funding
from adapters.sim import SimConfig, SimVenue
from engine.events import FundingPaid, InstrumentSpec
from engine.instrument import BTCUSDT, Instrument
from replay.cards import load_card_text
from replay.cli import cli
from replay.commands.data import data
from tests.test_sim_support import MINUTE, SYMBOL, USDT, bar, of, submit

HOUR = 60  # minutes per bar below
EIGHT_H = 8 * 3_600_000


def _hold_long(v: SimVenue, bars: int) -> list[FundingPaid]:
    """10 lots long from the 01:00 open, then ``bars`` hourly bars closing at 120."""
    v.on_candle(bar(0, 100, 101, 99, 100, minutes=HOUR))
    v.on_command(submit(HOUR * MINUTE, "e", "Buy", 10))
    paid: list[FundingPaid] = []
    for i in range(1, bars + 1):
        paid += of(v.on_candle(bar(i, 100, 101, 99, 120, minutes=HOUR)), FundingPaid)
    return paid


def test_by_default_a_long_pays_one_hundredth_of_a_percent_at_each_8h_settlement():
    v = SimVenue(Instrument(InstrumentSpec(SYMBOL, "1", "1", "1")), SimConfig(), 10_000 * USDT)
    assert v.funding_interval_ms == EIGHT_H  # the instrument's fundingInterval: 480 minutes
    paid = _hold_long(v, 24)  # bars closing 02:00 .. 25:00: settlements 08:00, 16:00, 24:00
    assert [p.ts for p in paid] == [EIGHT_H, 2 * EIGHT_H, 3 * EIGHT_H]
    # 10 lots x 120 USDT = 1200 USDT of position value; x 0.0001 = 0.12 USDT each time.
    assert [p.amount for p in paid] == [12 * USDT // 100] * 3
    assert [p.rate_e8 for p in paid] == [10_000] * 3


def test_an_instrument_that_is_not_a_perpetual_never_pays_funding():
    spec = InstrumentSpec(SYMBOL, "1", "1", "1", funding_interval=0)
    v = SimVenue(Instrument(spec), SimConfig(funding_rate_e8=50_000), 10_000 * USDT)
    assert _hold_long(v, 24) == []
    assert v.position.funding == 0


def test_a_4h_perpetual_settles_every_4h():
    spec = InstrumentSpec(SYMBOL, "1", "1", "1", funding_interval=240)
    v = SimVenue(Instrument(spec), SimConfig(), 10_000 * USDT)
    paid = _hold_long(v, 12)  # closes 02:00 .. 13:00: settlements 04:00, 08:00, 12:00
    assert [p.ts // 3_600_000 for p in paid] == [4, 8, 12]


def test_a_card_defaults_to_the_constant_and_the_instrument_interval():
    card = load_card_text(
        "symbol: BTCUSDT\nblocks: [{when: 'flat', then: {enter_long: {equity_pct: 10}}}]\n",
        source="c.yaml",
    )
    assert card.sim_config.funding_rate_e8 == 10_000
    assert card.sim_config.funding_interval_ms is None
    v = SimVenue(Instrument(BTCUSDT), card.sim_config, 10_000 * USDT)
    assert v.funding_interval_ms == EIGHT_H
    stock = load_card_text(
        "symbol: AAPL\ninstrument: {tick_size: 0.01, qty_step: 1, min_qty: 1, perpetual: false}\n"
        "blocks: [{when: 'flat', then: {enter_long: {equity_pct: 10}}}]\n",
        source="s.yaml",
    )
    assert stock.instrument is not None and stock.instrument.funding_interval == 0


# ----------------------------------------------------------------- --funding FILE


def test_funding_files_read_as_csv_and_as_bybit_json(tmp_path: Path) -> None:
    csv_file = tmp_path / "f.csv"
    csv_file.write_text("timestamp,rate\n1704096000000,-0.0005\n1704067200000,0.0001\n")
    assert load_funding(csv_file) == ((1704067200000, 10_000), (1704096000000, -50_000))
    js = tmp_path / "f.json"
    rows = [
        {"symbol": "BTCUSDT", "fundingRate": "-0.0005", "fundingRateTimestamp": "1704096000000"},
        {"symbol": "BTCUSDT", "fundingRate": "0.0001", "fundingRateTimestamp": "1704067200000"},
    ]
    envelope = {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": rows}}
    js.write_text(json.dumps(envelope))
    assert load_funding(js) == load_funding(csv_file)


def _run(tmp_path: Path, *extra: str) -> tuple[int, str]:
    args = ["run", "--store", str(tmp_path / "runs"), "--candles", "2000", "--no-report"]
    result = CliRunner().invoke(cli, [*args, "--json", "-q", *extra])
    return result.exit_code, result.output


def test_run_says_which_funding_applied_and_real_rates_change_what_is_paid(tmp_path: Path):
    code, out = _run(tmp_path)
    assert code == 0, out
    default = json.loads(out)
    assert default["funding"] == "0.01% every 8h (constant: no funding history given)"
    history = tmp_path / "rates.csv"
    start = generate(seed=7, n=1).start_ms  # the built-in market's first bar
    times = [start - start % EIGHT_H + k * EIGHT_H for k in range(1, 5)]
    history.write_text("timestamp,rate\n" + "".join(f"{t},0.002\n" for t in times))
    code, out = _run(tmp_path, "--funding", str(history))
    assert code == 0, out
    real = json.loads(out)
    assert real["funding"].startswith(f"history from {history}: 4 rates, ")
    assert real["final_equity"] != default["final_equity"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("timestamp,rate\n1704067200000,abc\n", "line 2 (data row 1): bad funding rate"),
        ("timestamp,rate\n1704067200000,0.5\n", "within +-0.05"),
        ("when,what\n1,2\n", "the header names no time and rate columns"),
        ('{"retCode": 10001, "result": {}}', "the saved response is an error"),
    ],
)
def test_a_bad_funding_file_exits_2_naming_file_line_and_field(
    tmp_path: Path, content: str, needle: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    code, out = _run(tmp_path, "--funding", str(bad))
    assert code == 2, out
    assert "--funding" in out and str(bad) in out and needle in out
    assert "Traceback" not in out


# ------------------------------------------------- replay data fetch --funding (emulator)

emulator = pytest.importorskip("tools.bybit_emulator")
N_1H = 24 * 90  # 90 days of hourly bars: 270 settlements, two pages of 200


@pytest.fixture(scope="module")
def played() -> Iterator[Any]:
    series = generate(seed=3, n=N_1H * 60)
    from adapters.historical.resample import resample

    hourly, _ = resample(series, "1h")
    sim = SimConfig(funding_series=((0, 10_000), (hourly.start_ms + 30 * 86_400_000, -2_500)))
    config = emulator.EmulatorConfig(history=len(hourly), sim=sim)
    handle = emulator.EmulatorHandle.start(list(hourly.events()), config)
    try:
        yield handle, hourly
    finally:
        handle.stop()


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def test_data_fetch_funding_pages_the_emulators_history_into_a_file_run_reads(
    played: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handle, hourly = played
    out = tmp_path / "funding.csv"
    args = ["fetch", "BTCUSDT", "--funding", "--start", _iso(hourly.start_ms)]
    args += ["--end", _iso(hourly.end_ms), "--out", str(out), "--base-url", handle.rest, "-q"]
    result = CliRunner().invoke(data, args)
    assert result.exit_code == 0, result.output
    rates = load_funding(out)
    first = -(-hourly.start_ms // EIGHT_H) * EIGHT_H
    expected_times = list(range(first, hourly.end_ms, EIGHT_H))
    assert [t for t, _ in rates] == expected_times  # every settlement, once, across pages
    assert len(rates) > 200
    switch = hourly.start_ms + 30 * 86_400_000
    assert all(r == (10_000 if t < switch else -2_500) for t, r in rates)


def test_data_fetch_funding_of_an_unknown_symbol_exits_2(
    played: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handle, hourly = played
    args = ["fetch", "ETHUSDT", "--funding", "--start", _iso(hourly.start_ms)]
    args += ["--end", _iso(hourly.end_ms), "--out", str(tmp_path / "x.csv"), "--base-url"]
    result = CliRunner().invoke(data, [*args, handle.rest, "-q"])
    assert result.exit_code == 2
    assert "symbol invalid" in result.output and "10001" in result.output


# ------------------------------------------------------------ the instrument's interval


def test_instruments_info_gives_the_funding_interval_and_a_dated_future_none() -> None:
    from adapters.bybit.convert import instrument_spec
    from tests.test_bybit_convert import BTC_ROW

    assert BTC_ROW["fundingInterval"] == 480
    assert instrument_spec(BTC_ROW).funding_interval == 480
    assert instrument_spec({**BTC_ROW, "fundingInterval": 240}).funding_interval == 240
    future = {**BTC_ROW, "contractType": "LinearFutures"}
    assert instrument_spec(future).funding_interval == 0


def test_instrument_option_declares_the_interval_or_no_perpetual() -> None:
    from replay.errors import InputError
    from replay.instruments import parse_instrument

    base = "tick_size=1,qty_step=1,min_qty=1"
    assert parse_instrument(base, "X", None).funding_interval == 480
    assert parse_instrument(f"{base},funding_interval=4h", "X", None).funding_interval == 240
    assert parse_instrument(f"{base},perpetual=false", "X", None).funding_interval == 0
    assert parse_instrument("tick_size=0.5", "BTCUSDT", BTCUSDT).funding_interval == 480
    with pytest.raises(InputError, match="funding_interval='90s': expected whole minutes"):
        parse_instrument(f"{base},funding_interval=90s", "X", None)
    with pytest.raises(InputError, match="perpetual='maybe'"):
        parse_instrument(f"{base},perpetual=maybe", "X", None)
