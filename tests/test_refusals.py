"""Nothing refused is hidden (issue 11 section 6): the bundled cards run through
``replay run`` and the refusals the summary reports equal a count made here, independently,
over the events of the session's log."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from adapters.historical import generate
from adapters.historical.csv import write_csv
from adapters.historical.series import CandleSeries
from engine.events import IntentEmitted, Liquidated, OrderRejected, RiskRejected
from eventstore import EventStore
from projections.refusals import RefusalSummary
from replay.cards import load_card
from replay.cli import cli
from replay.instruments import instrument_for
from replay.verify import read_session
from tests.cards import ma_cross_card

CARDS = Path(__file__).resolve().parents[1] / "ideacards"
REAL_5M = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/crypto/bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
)
BUNDLED = sorted(CARDS.glob("*.yaml"))


def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def five_minute_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic 1-minute candles summed into 5-minute bars (every bundled card but the
    1-minute one runs on 5-minute bars), written as a CSV `replay run --data` reads."""
    inst = instrument_for("BTCUSDT")
    m = generate(seed=11, n=5 * 9000, instrument=inst)
    k = len(m) // 5

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[: k * 5].reshape(k, 5)

    series = CandleSeries(
        inst,
        "5m",
        open_ms=blocks(m.open_ms)[:, 0].copy(),
        close_ms=blocks(m.close_ms)[:, -1].copy(),
        open=blocks(m.open)[:, 0].copy(),
        high=blocks(m.high).max(axis=1),
        low=blocks(m.low).min(axis=1),
        close=blocks(m.close)[:, -1].copy(),
        volume=blocks(m.volume).sum(axis=1),
        turnover=blocks(m.turnover).sum(axis=1),
    )
    path = tmp_path_factory.mktemp("data") / "synthetic_5m.csv"
    write_csv(series, path)
    return path


def _run(store: Path, card: Path, data: Path | None, session: str, *extra: str) -> dict:
    args = ["run", str(card), "--store", str(store), "--session", session, "--json", *extra]
    if data is not None:
        args += ["--data", str(data)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def numbers_as_n(text: str) -> str:
    return re.sub(r"[0-9]+(\.[0-9]+)?", "N", text)


def _independent(store: Path, session: str, blocks: list[str]) -> dict:
    """The counts, made from the log's events by type and reason, without projections."""
    risk: collections.Counter[str] = collections.Counter()
    venue: collections.Counter[str] = collections.Counter()
    fired: collections.Counter[str] = collections.Counter()
    liquidated = set()
    with EventStore(store) as s:
        for _, ev in read_session(s, session):
            if isinstance(ev, RiskRejected):
                risk[numbers_as_n(ev.reason)] += 1
            elif isinstance(ev, OrderRejected):
                code = f"{ev.code} " if ev.code else ""
                venue[code + numbers_as_n(ev.reason)] += 1
            elif isinstance(ev, IntentEmitted):
                fired[ev.intent.block] += 1
            elif isinstance(ev, Liquidated):
                liquidated.add(ev.exec_id)
    return {
        "risk": dict(risk),
        "venue": dict(venue),
        "intents": sum(fired.values()),
        "liquidations": len(liquidated),
        "never_fired": [b for b in blocks if not fired[b]],
    }


@pytest.mark.parametrize("balance", ["10000", "40"])
@pytest.mark.parametrize("card", BUNDLED, ids=lambda p: p.stem)
def test_bundled_card_refusals_equal_a_count_over_its_log(
    card: Path, balance: str, five_minute_csv: Path, tmp_path: Path
) -> None:
    """On the real 5-minute file where it is here (else synthetic 5-minute bars); a small
    balance makes many entries too small to place, so the counts are not all zero."""
    loaded = load_card(card)
    data = None if loaded.timeframe == "1m" else REAL_5M if REAL_5M.exists() else five_minute_csv
    out = _run(tmp_path, card, data, "s", "--balance", balance)
    got = out["refusals"]
    want = _independent(tmp_path, "s", [b.name for b in loaded.spec.blocks])
    assert got["risk"] == want["risk"]
    assert got["venue"] == want["venue"]
    assert got["intents"] == want["intents"]
    assert got["liquidations"] == want["liquidations"]
    assert got["never_fired"] == want["never_fired"]
    assert got["risk_total"] == sum(want["risk"].values())
    assert got["venue_total"] == sum(want["venue"].values())
    assert got["failed_protections"] == {}
    # refused intents: at least every risk rejection, at most every rejection of either kind
    assert got["risk_total"] <= got["refused"] <= got["risk_total"] + got["venue_total"]
    assert got["warning"] == (got["refused"] > 0.05 * got["intents"])
    # summary.json says the same as --json
    summary = json.loads(Path(out["report"]["summary"]).read_text())
    assert summary["refusals"] == got
    html = Path(out["report"]["html"]).read_text()
    assert "id='refusals'" in html and f"{got['risk_total']:,}" in html


def _card(folder: Path, name: str, equity_pct: float, extra_block: str = "") -> Path:
    path = ma_cross_card(folder, equity_pct=equity_pct, name=name)
    text = path.read_text().replace("risk:\n", extra_block + "risk:\n")
    path.write_text(text)
    return path


def test_the_table_warns_when_more_than_5_percent_are_refused(tmp_path: Path) -> None:
    # 1000 % of equity at max_leverage 3: every entry is refused by the risk check.
    card = _card(tmp_path, "greedy", 1000)
    result = invoke("run", str(card), "--store", str(tmp_path), "--candles", "3000")
    assert result.exit_code == 0, result.output
    assert re.search(r"warning: (\d[\d,]*) of \1 intents \(100\.0%\) were refused", result.output)
    assert "leverage N would exceed max N" in result.output
    assert "risk rejections" in result.output


def test_no_warning_when_nothing_is_refused(tmp_path: Path) -> None:
    card = _card(tmp_path, "modest", 20)
    out = _run(tmp_path, card, None, "modest")
    assert out["refusals"]["intents"] > 10 and out["refusals"]["refused"] == 0
    assert out["refusals"]["warning"] is False
    result = invoke("run", str(card), "--store", str(tmp_path), "--session", "again")
    assert result.exit_code == 0, result.output
    assert "intents" in result.output and "were refused" not in result.output


def test_the_threshold_is_more_than_5_percent() -> None:
    assert not RefusalSummary(intents=100, refused=5).warn
    assert RefusalSummary(intents=100, refused=6).warn
    assert RefusalSummary(intents=1000, refused=51).warn
    assert not RefusalSummary(intents=1000, refused=50).warn
    assert not RefusalSummary().warn


def test_a_block_that_never_fires_is_named(tmp_path: Path) -> None:
    never = "  - name: price_below_zero\n    when: close < 0\n    then: {exit: {}}\n"
    card = _card(tmp_path, "silent", 20, never)
    out = _run(tmp_path, card, None, "silent")
    assert out["refusals"]["never_fired"] == ["price_below_zero"]
    assert out["refusals"]["by_block"]["price_below_zero"] == 0
    assert out["refusals"]["by_block"]["long_on_golden_cross"] > 0
    result = invoke("run", str(card), "--store", str(tmp_path), "--session", "table")
    assert re.search(r"blocks never fired\s*│\s*price_below_zero", result.output), result.output
    report = invoke("report", "silent", "--store", str(tmp_path), "--json")
    assert json.loads(report.output)["refusals"]["never_fired"] == ["price_below_zero"]
    html = (tmp_path / "reports" / "silent" / "report.html").read_text()
    assert "blocks never fired" in html and "price_below_zero" in html
