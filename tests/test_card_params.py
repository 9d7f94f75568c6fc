"""Card ``params:``: substitution, every error, overrides (``apply``, ``--set``), the log."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine.events import SessionStarted
from eventstore import EventStore
from replay.cards import IdeaCardError, load_card, load_card_text
from replay.cards.params import apply, parse_sets
from replay.cli import cli
from replay.verify import read_session

ROOT = Path(__file__).resolve().parents[1]

CARD = """\
name: pcard
symbol: BTCUSDT
params:
  fast: {default: 5, type: int, min: 2, max: 100, sweep: {min: 5, max: 50, step: 5}}
  slow: 20
  k: {default: 2.0, min: 0.5, sweep: [1.5, 2.0, 2.5]}
  lev: {default: 3, type: float, max: 100}
features:
  f: {indicator: sma, period: "${fast}"}
  s: {indicator: sma, period: "${slow}"}
  atr: {indicator: atr, period: 14}
blocks:
  - when: {cross_above: [f, s]}
    then: {enter_long: {equity_pct: 50, stop_loss: "close - ${k} * atr"}}
  - when: {cross_below: [f, s]}
    then: exit
risk:
  max_leverage: ${lev}
"""


def write(tmp_path: Path, text: str = CARD) -> Path:
    path = tmp_path / "pcard.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def fail(tmp_path: Path, text: str = CARD, **overrides: object) -> IdeaCardError:
    path = write(tmp_path, text)
    with pytest.raises(IdeaCardError) as info:
        load_card(path, overrides)
    err = info.value
    assert str(path) in str(err)
    if err.line is not None:
        assert f"line {err.line}" in str(err)
    return err


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# ---------------------------------------------------------------- substitution


def test_defaults_substitute_into_features_blocks_and_risk(tmp_path: Path) -> None:
    card = load_card(write(tmp_path))
    assert card.params == {"fast": 5, "slow": 20, "k": 2.0, "lev": 3.0}
    periods = {f.name: f.params["period"] for f in card.spec.features}
    assert periods == {"f": 5, "s": 20, "atr": 14}
    assert isinstance(periods["f"], int)
    assert card.engine_config.risk.max_leverage == 3.0
    assert "close - 2.0 * atr" in repr(card.spec.blocks[0])


def test_overrides_change_every_use(tmp_path: Path) -> None:
    card = load_card(write(tmp_path), {"fast": "8", "k": 1.25, "lev": "7.5"})
    assert card.params == {"fast": 8, "slow": 20, "k": 1.25, "lev": 7.5}
    assert card.spec.features[0].params["period"] == 8
    assert card.engine_config.risk.max_leverage == 7.5
    assert "close - 1.25 * atr" in repr(card.spec.blocks[0])
    assert card.text == write(tmp_path).read_text()  # the log keeps the card as written


def test_specs_expand_sweeps(tmp_path: Path) -> None:
    specs = load_card(write(tmp_path)).param_specs
    assert specs["fast"].sweep == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert (specs["fast"].min, specs["fast"].max, specs["fast"].type) == (2, 100, "int")
    assert specs["k"].sweep == (1.5, 2.0, 2.5) and specs["k"].type == "float"
    assert specs["slow"].type == "int" and specs["slow"].sweep == ()
    assert specs["lev"].type == "float" and specs["lev"].default == 3.0


def test_apply_is_pure_and_needs_no_file(tmp_path: Path) -> None:
    path = write(tmp_path)
    card = load_card(path)
    path.unlink()  # a sweep trial never reads the file again
    trial = apply(card, {"fast": 10, "slow": 40})
    assert trial.params["fast"] == 10 and trial.spec.features[1].params["period"] == 40
    assert card.params["fast"] == 5  # the original is untouched
    assert trial.hash == card.hash and trial.source == card.source
    from_text = apply(CARD, {"fast": 12})
    assert from_text.params["fast"] == 12 and from_text.source == "<text>"


def test_a_card_without_params_is_unchanged(tmp_path: Path) -> None:
    card = load_card(ROOT / "ideacards" / "ma_cross.yaml")
    assert card.params == {} and card.param_specs == {}


# ---------------------------------------------------------------- declaration errors


def test_unknown_reference_names_its_line_and_suggests(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace('period: "${slow}"', 'period: "${slwo}"'))
    assert (err.line, err.path, err.found, err.suggestion) == (
        10,
        "features.s.period",
        "slwo",
        "slow",
    )
    assert "did you mean 'slow'?" in str(err)


def test_unknown_reference_inside_an_expression(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("${k} * atr", "${kk} * atr"))
    assert err.line == 14 and err.path.startswith("blocks[0].then")
    assert err.suggestion == "k"


def test_param_unknown_key(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("slow: 20", "slow: {default: 20, mx: 50}"))
    assert (err.line, err.path, err.found) == (5, "params.slow", "mx")
    assert "did you mean 'max'?" in str(err)


def test_param_bad_type_name(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("slow: 20", "slow: {default: 20, type: integer}"))
    assert (err.line, err.path, err.found) == (5, "params.slow", "integer")
    assert "int or float" in err.expected


def test_param_default_of_the_wrong_type(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("slow: 20", "slow: {default: 2.5, type: int}"))
    assert (err.path, err.found) == ("params.slow", 2.5) and "not an int" in str(err)


def test_param_default_out_of_its_bounds(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("slow: 20", "slow: {default: 20, min: 30}"))
    assert (err.line, err.path, err.found) == (5, "params.slow", 20)
    assert "[30, inf]" in err.expected


def test_param_max_below_min(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("slow: 20", "slow: {default: 20, min: 30, max: 10}"))
    assert err.path == "params.slow" and "max is below min" in str(err)


def test_param_missing_default(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("slow: 20", "slow: {min: 3}"))
    assert err.path == "params.slow" and "default" in str(err)


def test_param_not_a_number(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("slow: 20", "slow: twenty"))
    assert (err.line, err.path, err.found) == (5, "params.slow", "twenty")


def test_param_bad_name(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD.replace("slow: 20", "2slow: 20"))
    assert err.path == "params.2slow" and "not a parameter name" in str(err)


def test_params_not_a_mapping(tmp_path: Path) -> None:
    text = CARD.split("params:")[0] + "params: [1, 2]\nfeatures:" + CARD.split("features:")[1]
    err = fail(tmp_path, text)
    assert (err.line, err.path) == (3, "params")


@pytest.mark.parametrize(
    ("sweep", "words"),
    [
        ("{min: 5, max: 50}", "min, max and step"),
        ("{min: 50, max: 5, step: 5}", "step > 0 and max >= min"),
        ("{min: 5, max: 50, step: 0}", "step > 0"),
        ("[]", "empty sweep"),
        ("[5, 500]", "above the maximum"),
        ("[5, 7.5]", "not an int"),
        ("fast", "not a sweep"),
    ],
)
def test_bad_sweeps(tmp_path: Path, sweep: str, words: str) -> None:
    text = CARD.replace("sweep: {min: 5, max: 50, step: 5}", f"sweep: {sweep}")
    err = fail(tmp_path, text)
    assert (err.line, err.path) == (4, "params.fast")
    assert words in str(err)


# ---------------------------------------------------------------- override errors


def test_override_unknown_name_suggests(tmp_path: Path) -> None:
    err = fail(tmp_path, CARD, fsat="20")
    assert (err.path, err.found, err.suggestion) == ("params", "fsat", "fast")
    assert "one of fast, slow, k, lev" in err.expected and "did you mean 'fast'?" in str(err)


def test_override_on_a_card_without_params(tmp_path: Path) -> None:
    with pytest.raises(IdeaCardError) as info:
        load_card(ROOT / "ideacards" / "ma_cross.yaml", {"fast": "3"})
    assert "unknown parameter" in str(info.value) and "none declared" in info.value.expected


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("fast", "abc", "not an int"),
        ("fast", "2.5", "not an int"),
        ("fast", True, "not an int"),
        ("k", "x", "not a float"),
        ("k", "nan", "not a finite float"),
        ("fast", "1", "below the minimum"),
        ("fast", "101", "above the maximum"),
        ("k", "0.1", "below the minimum"),
    ],
)
def test_override_wrong_type_or_out_of_bounds(
    tmp_path: Path, name: str, value: object, words: str
) -> None:
    err = fail(tmp_path, CARD, **{name: value})
    assert err.path == f"params.{name}" and words in str(err)
    assert err.line == {"fast": 4, "k": 6}[name]  # the line that declares the param


def test_override_the_field_itself_refuses_names_the_field_line(tmp_path: Path) -> None:
    text = CARD.replace("lev: {default: 3, type: float, max: 100}", "lev: 3.0")
    err = fail(tmp_path, text, lev="500")  # no bound on the param; risk.max_leverage <= 125
    assert (err.line, err.path) == (18, "risk.max_leverage")


def test_parse_sets() -> None:
    assert parse_sets(["fast=20", " slow = 100 "]) == {"fast": "20", "slow": "100"}
    for bad in ("fast", "=3", "fast="):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            parse_sets([bad])


# ---------------------------------------------------------------- Python strategies


PY_CARD = """\
name: py
symbol: BTCUSDT
timeframes: {execution: 5m}
params:
  eq: 30
  left: 3
features:
  swing: {indicator: swing, left: "${left}", right: 3}
strategy:
  class: ideacards.detector_driven.DetectorDriven
"""


def test_python_strategy_receives_card_params_it_accepts(tmp_path: Path) -> None:
    text = PY_CARD.replace("eq: 30", "equity_pct: 30")
    card = load_card(write(tmp_path, text), {"equity_pct": "35"})
    # `left` is only for the features: DetectorDriven(equity_pct) is not given it.
    assert card.spec.strategy_params == {"equity_pct": 35}


def test_strategy_params_override_card_params(tmp_path: Path) -> None:
    text = PY_CARD.replace("eq: 30", "equity_pct: 30") + "  params: {equity_pct: 12}\n"
    card = load_card(write(tmp_path, text), {"equity_pct": "35"})
    assert card.spec.strategy_params == {"equity_pct": 12}


def test_strategy_params_may_reference_card_params(tmp_path: Path) -> None:
    card = load_card(write(tmp_path, PY_CARD + '  params: {equity_pct: "${eq}"}\n'), {"eq": 40})
    assert card.spec.strategy_params == {"equity_pct": 40}


# ---------------------------------------------------------------- the CLI and the log


def test_run_with_set_records_params_and_verifies(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    card = write(tmp_path)
    args = ["run", str(card), "--store", str(store), "--candles", "3000", "--json"]
    result = invoke(*args, "--session", "p1", "--set", "fast=8", "--set", "slow=30")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    summary = json.loads(Path(out["report"]["summary"]).read_text())
    assert summary["params"] == {"fast": 8, "slow": 30, "k": 2.0, "lev": 3.0}
    with EventStore(store) as es:
        started = next(e for _, e in read_session(es, "p1"))
    assert isinstance(started, SessionStarted)
    assert started.params == {"fast": 8, "slow": 30, "k": 2.0, "lev": 3.0}
    verified = invoke("verify", "p1", "--store", str(store))
    assert verified.exit_code == 0 and "OK p1" in verified.output, verified.output
    # The log alone rebuilds the same card (defaults would give another fingerprint).
    rebuilt = load_card_text(started.card_text, params=started.params)
    assert rebuilt.spec.features[0].params["period"] == 8
    default = invoke(*args, "--session", "p0")
    assert json.loads(default.output)["fingerprint"] != out["fingerprint"]
    listed = [
        json.loads(line)
        for line in invoke("sessions", "--store", str(store), "--json").output.splitlines()
    ]
    by_name = {row["session"]: row for row in listed}
    assert by_name["p1"]["params"] == "fast=8 slow=30 k=2.0 lev=3.0"
    rep = invoke("report", "p1", "--store", str(store), "--out", str(tmp_path / "rep"), "--json")
    assert rep.exit_code == 0, rep.output
    again = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert again["params"] == summary["params"]  # folded from the log's SessionStarted
    assert "fast=8 slow=30" in (tmp_path / "rep" / "report.html").read_text()


@pytest.mark.parametrize(
    ("sets", "words"),
    [
        (["--set", "fsat=8"], "did you mean 'fast'?"),
        (["--set", "fast=eight"], "not an int"),
        (["--set", "fast=1000"], "above the maximum"),
        (["--set", "fast"], "NAME=VALUE"),
    ],
)
def test_run_bad_set_exits_2_without_traceback(tmp_path: Path, sets: list[str], words: str) -> None:
    card = write(tmp_path)
    main = "import sys; from replay.cli import main; main()"
    args = ["run", str(card), "--store", str(tmp_path / "r"), *sets]
    proc = subprocess.run(
        [sys.executable, "-c", main, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("reports/*"))


def test_cards_module_accepts_set(tmp_path: Path) -> None:
    card = write(tmp_path)

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "replay.cards", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )

    ok = check("--set", "fast=9", str(card))
    assert ok.returncode == 0 and "params fast=9 slow=20 k=2.0 lev=3.0" in ok.stdout, ok.stdout
    bad = check("--set", "fast=1", str(card))
    assert bad.returncode == 2 and "below the minimum" in bad.stdout
    assert check("--set", "fast", str(card)).returncode == 2


def test_the_readme_example_loads_and_takes_set() -> None:
    text = (ROOT / "ideacards" / "README.md").read_text()
    example = text[text.index("## Parameters") :].split("```yaml\n", 1)[1].split("```", 1)[0]
    card = apply(example, {"fast": "20", "lev": "5"})
    assert card.params == {"fast": 20, "slow": 30, "k": 2.0, "lev": 5.0}
    assert card.param_specs["fast"].sweep[-1] == 50


def test_inspect_at_rebuilds_a_set_session(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    card = write(tmp_path)
    base = ["run", str(card), "--store", str(store), "--candles", "2000", "-q"]
    assert invoke(*base, "--session", "a", "--set", "fast=7", "--set", "lev=4.5").exit_code == 0
    shown = invoke("inspect", "a", "--store", str(store), "--at", "1500", "--full", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["engine"]["config"]["risk"]["max_leverage"] == 4.5
