"""Bad cards fail at load with an IdeaCardError naming file, line, field path, found,
expected and (where one exists) a close-match suggestion. One test per kind of mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from replay.cards import IdeaCardError, load_card, load_card_text

GOOD = """\
name: t
symbol: BTCUSDT
features:
  fast: {indicator: sma, period: 10}
  slow: {indicator: sma, period: 30}
blocks:
  - when: {cross_above: [fast, slow]}
    then: {enter_long: {equity_pct: 10}}
"""


def fail(tmp_path: Path, text: str) -> IdeaCardError:
    path = tmp_path / "card.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(IdeaCardError) as info:
        load_card(path)
    err = info.value
    assert err.source == str(path)
    assert str(path) in str(err)  # the message names the file...
    if err.line is not None:
        assert f"line {err.line}" in str(err)  # ...and the line
    assert err.path == "" or err.path in str(err)
    return err


def test_the_good_card_loads(tmp_path: Path) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(GOOD)
    card = load_card(path)
    assert card.symbol == "BTCUSDT" and card.timeframe == "1m"
    assert [f.name for f in card.spec.features] == ["fast", "slow"]


def test_unknown_top_level_key_suggests_the_close_one(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("blocks:", "blokcs:"))
    # 'blocks' is then also missing, but the unknown key is the error to report
    assert (err.line, err.path, err.found, err.suggestion) == (6, "blokcs", "blokcs", "blocks")
    assert "symbol" in err.expected and "did you mean 'blocks'" in str(err)


def test_unknown_indicator(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("indicator: sma, period: 30", "indicator: ema_, period: 30"))
    assert (err.line, err.path, err.found, err.suggestion) == (
        5,
        "features.slow.indicator",
        "ema_",
        "ema",
    )
    assert "unknown indicator 'ema_'" in str(err) and "did you mean 'ema'?" in str(err)
    assert "sma" in err.expected


def test_unknown_indicator_parameter(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("sma, period: 10", "sma, perod: 10"))
    assert (err.line, err.path, err.found, err.suggestion) == (
        4,
        "features.fast.perod",
        "perod",
        "period",
    )
    assert "period" in err.expected


def test_indicator_parameter_out_of_range(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("period: 30", "period: 0"))
    assert (err.line, err.path, err.found) == (5, "features.slow.period", 0)
    assert "period" in err.expected


def test_unknown_name_in_an_expression(tmp_path: Path) -> None:
    text = GOOD.replace("when: {cross_above: [fast, slow]}", 'when: "clse > slow"')
    err = fail(tmp_path, text)
    assert (err.line, err.path, err.found, err.suggestion) == (7, "blocks[0].when", "clse", "close")
    assert "close" in err.expected


def test_unknown_output_of_a_multi_output_feature(tmp_path: Path) -> None:
    text = GOOD.replace("slow: {indicator: sma, period: 30}", "bb: {indicator: bollinger}")
    text = text.replace("when: {cross_above: [fast, slow]}", "when: {gt: [close, bb.uper]}")
    err = fail(tmp_path, text)
    assert (err.line, err.path, err.found, err.suggestion) == (
        7,
        "blocks[0].when.gt",
        "bb.uper",
        "bb.upper",
    )


def test_missing_symbol(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("symbol: BTCUSDT\n", ""))
    assert err.path == "symbol" and err.found is None
    assert "missing" in str(err) and err.line == 1


def test_wrong_type(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("equity_pct: 10", 'equity_pct: "lots"'))
    assert (err.line, err.path, err.found) == (8, "blocks[0].then.enter_long.equity_pct", "lots")
    assert "number" in err.expected


def test_risk_sizing_without_a_stop_distance(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("equity_pct: 10", "risk_pct: 1"))
    assert (err.line, err.path) == (8, "blocks[0].then.enter_long")
    assert "stop_distance" in err.expected and "risk_pct needs stop_distance" in str(err)


def test_condition_with_two_keys(tmp_path: Path) -> None:
    text = GOOD.replace(
        "when: {cross_above: [fast, slow]}", "when: {cross_above: [fast, slow], flat: true}"
    )
    err = fail(tmp_path, text)
    assert (err.line, err.path) == (7, "blocks[0].when")
    assert "exactly one" in str(err) and "cross_above" in err.expected


def test_misspelt_condition_key(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("cross_above", "cross_abve"))
    assert (err.line, err.path, err.found, err.suggestion) == (
        7,
        "blocks[0].when.cross_abve",
        "cross_abve",
        "cross_above",
    )


def test_misspelt_action(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("enter_long", "enter_lng"))
    assert (err.line, err.path, err.found, err.suggestion) == (
        8,
        "blocks[0].then.enter_lng",
        "enter_lng",
        "enter_long",
    )


def test_bad_timeframe(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("name: t\n", "name: t\ntimeframes: {execution: 5x}\n"))
    assert (err.line, err.path, err.found) == (2, "timeframes.execution", "5x")
    assert "1h" in err.expected


def test_feature_on_an_undeclared_timeframe(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("sma, period: 30", "sma, period: 30, timeframe: 1h"))
    assert (err.line, err.path, err.found) == (5, "features.slow.timeframe", "1h")
    assert "timeframes.higher" in err.expected


def test_duplicate_key(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("name: t\n", "name: t\nname: u\n"))
    assert (err.line, err.path, err.found) == (2, "name", "name")
    assert "first on line 1" in str(err)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    err = fail(
        tmp_path, GOOD.replace("  slow: {indicator: sma, period: 30}", "  slow: {indicator: sma")
    )
    assert err.line is not None and 5 <= err.line <= 6
    assert "YAML" in err.expected and err.path == ""


def test_expression_syntax_error(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("when: {cross_above: [fast, slow]}", 'when: "close >"'))
    assert (err.line, err.path, err.found) == (7, "blocks[0].when", "close >")
    assert "cannot parse" in str(err)


def test_bad_fee_rate(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD + "sim: {taker_fee: cheap}\n")
    assert (err.line, err.path, err.found) == (9, "sim.taker_fee", "cheap")
    assert "0.055%" in err.expected


def test_no_blocks_and_no_strategy(tmp_path: Path) -> None:
    err = fail(tmp_path, "symbol: BTCUSDT\n")
    assert err.path == "blocks" and "blocks" in err.expected


def test_python_class_in_a_misspelt_module(tmp_path: Path) -> None:
    (tmp_path / "detector_driven.py").write_text(
        "class DetectorDriven:\n"
        "    def on_bar(self, bar, ctx): return []\n"
        "    def snapshot(self): return None\n"
        "    def restore(self, state): pass\n"
    )
    text = "symbol: BTCUSDT\nstrategy:\n  class: dector_driven.DetectorDriven\n"
    err = fail(tmp_path, text)
    assert (err.line, err.path, err.found) == (3, "strategy.class", "dector_driven")
    assert err.suggestion == "detector_driven.DetectorDriven"
    assert "did you mean 'detector_driven.DetectorDriven'?" in str(err)


def test_python_class_misspelt_inside_a_package() -> None:
    repo = Path(__file__).resolve().parents[1]
    text = "symbol: BTCUSDT\nstrategy: {class: ideacards.dector_driven.DetectorDriven}\n"
    with pytest.raises(IdeaCardError) as info:
        load_card_text(text, str(repo / "ideacards" / "x.yaml"))
    assert info.value.suggestion == "ideacards.detector_driven.DetectorDriven"
    text = "symbol: BTCUSDT\nstrategy: {class: ideacards.detector_driven.DetectorDrivn}\n"
    with pytest.raises(IdeaCardError) as info:
        load_card_text(text, str(repo / "ideacards" / "x.yaml"))
    assert info.value.suggestion == "ideacards.detector_driven.DetectorDriven"
    assert info.value.line == 2 and info.value.path == "strategy.class"


def test_qty_below_one_lot(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("equity_pct: 10", "qty: 0.0001"))
    assert (err.line, err.path, err.found) == (8, "blocks[0].then.enter_long.qty", 0.0001)
    assert "0.001" in err.expected


def test_misspelt_feature_timeframe_key(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("sma, period: 30", "sma, period: 30, timefrme: 1h"))
    assert (err.line, err.path, err.found, err.suggestion) == (
        5,
        "features.slow.timefrme",
        "timefrme",
        "timeframe",
    )


def test_a_list_where_a_mapping_belongs(tmp_path: Path) -> None:
    err = fail(
        tmp_path, GOOD.replace("then: {enter_long: {equity_pct: 10}}", "then: {enter_long: [10]}")
    )
    assert (err.line, err.path, err.found) == (8, "blocks[0].then.enter_long", [10])
    assert "mapping" in err.expected


def test_lower_case_symbol(tmp_path: Path) -> None:
    err = fail(tmp_path, GOOD.replace("symbol: BTCUSDT", "symbol: btcusdt"))
    assert (err.line, err.path, err.found) == (2, "symbol", "btcusdt")
    assert "BTCUSDT" in err.expected


def test_an_empty_section_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(GOOD + "risk:\nsim:\n")
    assert load_card(path).engine_config.risk.max_open_orders == 20


def test_python_class_that_refuses_its_params(tmp_path: Path) -> None:
    text = (
        "symbol: BTCUSDT\nstrategy:\n  class: ideacards.detector_driven.DetectorDriven\n"
        "  params: {equity_pct: 5, colour: red}\n"
    )
    err = fail(tmp_path, text)
    assert (err.line, err.path, err.found) == (
        4,
        "strategy.params",
        {"equity_pct": 5, "colour": "red"},
    )
    assert "colour" in err.message and "constructor" in err.expected
