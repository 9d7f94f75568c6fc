"""The opt-in mypyc build (``make compiled``, ``REPLAY_COMPILED=1``) writes the same logs.

The same backtests run in two subprocesses, pure Python and compiled: every example card,
cards at the limits (10 billion USDT, notionals about 2**60, where a compiled int / int
division or int -> double conversion would round differently) fast and per candle, a
four-trial sweep on two pool workers and a walk-forward one, verify, and the state at an
event; the fingerprints must be equal. A build whose
manifest no longer matches the sources is refused with a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tools.compiled import BUILD_DIR, DIR_ENV, ENV, MANIFEST, ROOT, stale_sources

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")

HUGE_CARD = """\
name: huge_notional
symbol: BTCUSDT
timeframes: {execution: 1m}
features:
  fast: {indicator: sma, period: 5}
  slow: {indicator: sma, period: 20}
blocks:
  - name: take_profit
    when: "long and bars_in_trade == 2"
    then: {set_take_profit: {price: avg_entry * 1.0003}}
  - name: scale_out
    when: "long and unrealized_pct > 0.05"
    then: {reduce: {pct: 37}}
  - name: long
    when: {cross_above: [fast, slow]}
    then: {enter_long: {equity_pct: EQUITY_PCT}}
  - name: short
    when: {cross_below: [fast, slow]}
    then: {enter_short: {equity_pct: EQUITY_PCT}}
risk: {allow_flip: true, max_leverage: 10}
sim: {leverage: 10}
instrument: {tick_size: 0.01, qty_step: 0.000001, min_qty: 0.000001}
"""

HUGE_PYTHON = """\
name: huge_python
symbol: BTCUSDT
timeframes: {execution: 1m}
strategy: {class: tests.compiled_probe.AvgEntryProbe, params: {equity_pct: EQUITY_PCT}}
risk: {max_leverage: 10}
sim: {leverage: 10}
instrument: {tick_size: 0.01, qty_step: 0.000001, min_qty: 0.000001}
"""

RUNNER = """\
import json, shutil, sys
from pathlib import Path
import hashlib, msgspec
import engine.core
from replay.inspection import state_at
from replay.verify import verify_session
from adapters.historical import write_parquet
from eventstore import EventStore
from replay.backtest import BacktestRequest, execute
from replay.sweep.runner import SweepConfig, run
from replay.sweep.view import fold
from tools.bench_sweep import CARD, gbm

root, tmp, huge = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
out = {"core": engine.core.__file__, "fps": {}, "summaries": {}}
shutil.rmtree(tmp, ignore_errors=True)  # the same paths in both runs: sweep ids cover them
tmp.mkdir()
runs = [(c, True, "10000") for c in sorted((root / "ideacards").glob("*.yaml"))]
for k, text in enumerate(huge):  # entries below and above MAX_NOTIONAL (2**60)
    for pct in (40, 60):
        card = tmp / f"huge_{k}_{pct}.yaml"
        card.write_text(text.replace("EQUITY_PCT", str(pct)))
        runs += [(card, True, "10000000000"), (card, False, "10000000000")]
for i, (card, fast, balance) in enumerate(runs):
    store = tmp / f"s{i}"
    done = execute(BacktestRequest(card=card, store=store, session="s", n_candles=12_000,
        seed=11, balance=balance, show_progress=False, write_report=False, fast=fast))
    with EventStore(store) as es:
        out["fps"][f"{card.stem} fast={fast}"] = es.stream("s").fingerprint
    out["summaries"][f"{card.stem} fast={fast}"] = repr(msgspec.to_builtins(done.summary))
    if i % 3 == 0:  # the per-candle proof, and the state folded to an event
        with EventStore(store) as es:
            assert verify_session(es, "s").ok
            state = repr(state_at(es, "s", at=1_000)).encode()
        out["fps"][f"{card.stem} fast={fast} state"] = hashlib.sha256(state).hexdigest()
data = tmp / "gbm.parquet"
write_parquet(gbm(5000), data)
cfg = SweepConfig(card=CARD, data=data, store=tmp / "runs", workers=2,
    grids=["fast=5:10:5", "slow=20:40:20"], objective="total_return")
wf = msgspec.structs.replace(cfg, store=tmp / "wf", walk_forward=2)
for name, c in (("sweep", cfg), ("walk-forward", wf)):
    for t in fold(run(c)).trials:
        key = f"{name} {t.fold} {t.test} {t.params}"
        out["fps"][key] = t.fingerprint
        out["summaries"][key] = repr((t.metrics, t.returns))
print(json.dumps(out))
"""


#: Every place the compiled modules make a C double of a Python value (from the generated C,
#: tools/build_compiled.py), and why it gives what Python gives: the value is a float in
#: pure Python too, so the conversion is the identity, or an int that converts exactly.
#: No int / int division is left (operator.truediv). A new entry needs the same reasoning,
#: or an annotation saying ``int | float`` (kept as a Python object by mypyc).
AUDITED = {
    # the result of operator.truediv (a float) or 0.0
    "adapters/sim/orders.py:avg_price_ticks PyFloat_AsDouble": 1,
    "engine/positions.py:avg_entry_ticks PyFloat_AsDouble": 1,
    "projections/refusals.py:refused_fraction PyFloat_AsDouble": 1,
    "projections/refusals.py:warn PyFloat_AsDouble": 1,  # refused_fraction
    "projections/refusals.py:as_dict PyFloat_AsDouble": 1,  # refused_fraction
    # unrealized * 100.0 / entry_value: Python makes the same double of each int operand
    "engine/core.py:_update_ctx CPyFloat_FromTagged": 2,
    # EngineConfig float fields: EngineState decodes its config through msgpack (an int
    # becomes a float), cards build it from pydantic float fields (max_leverage,
    # daily_loss_limit_pct, limit_offset_ticks = float(...))
    "engine/core.py:step PyFloat_AsDouble": 1,
    "engine/risk.py:check_daily_loss PyFloat_AsDouble": 1,
    "engine/risk.py:check_increase PyFloat_AsDouble": 3,
    "replay/fastpath.py:run PyFloat_AsDouble": 1,
    # intent.offset (an int from a Python strategy is at most MAX_INTENT_NUMBER = 10**12,
    # checked before start_plan, so exact) and the config's limit_offset_ticks
    "engine/execution.py:start_plan PyFloat_AsDouble": 2,
    # lag buffers hold float(getter()) or NaN
    "engine/lags.py:get PyFloat_AsDouble": 1,
    "engine/lags.py:push PyFloat_AsDouble": 1,
    "engine/lags.py:restore PyFloat_AsDouble": 1,
    # float(...) results; ctx.avg_entry / unrealized_pct (set only from truediv, float
    # arithmetic or 0.0); IntentSpec.qty and the card's limit_offset_ticks (pydantic
    # floats, float(...) in replay/cards/convert.py)
    "engine/plan.py:value PyFloat_AsDouble": 1,
    "engine/plan.py:_call_python PyFloat_AsDouble": 1,
    "engine/plan.py:make PyFloat_AsDouble": 1,
    "engine/plan.py:<lambda> PyFloat_AsDouble": 2,
    "engine/plan.py:_compile_intent PyFloat_AsDouble": 6,
    "projections/trade_story.py:excursions PyFloat_AsDouble": 6,  # float(numpy value)
    "replay/sweep/trial.py:metrics_of PyFloat_AsDouble": 1,  # float(metric)
    "replay/sweep/trial.py:sampled_returns PyFloat_AsDouble": 1,  # float(numpy value)
}


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A current build: ``.compiled/`` if its manifest matches the tree, else a fresh one."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}) to build the compiled modules with")
    current = BUILD_DIR / MANIFEST
    if current.exists():
        manifest = json.loads(current.read_text())
        if "double_conversions" in manifest and not stale_sources(manifest):
            return BUILD_DIR
    from tools.build_compiled import build as build_into

    out = tmp_path_factory.mktemp("compiled")
    build_into(out)
    return out


def _python(code: str, *args: str, compiled_dir: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, DIR_ENV)}
    env["PYTHONPATH"] = str(ROOT)
    if compiled_dir is not None:
        env[ENV] = "1"
        env[DIR_ENV] = str(compiled_dir)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_compiled_build_writes_the_same_logs(build: Path, tmp_path: Path) -> None:
    args = (str(ROOT), str(tmp_path / "runs"), HUGE_CARD, HUGE_PYTHON)
    pure = json.loads(_python(RUNNER, *args, compiled_dir=None).stdout)
    done = _python(RUNNER, *args, compiled_dir=build)
    compiled = json.loads(done.stdout)
    assert pure["core"].endswith(".py")
    assert compiled["core"].endswith(SUFFIX) and Path(compiled["core"]).is_relative_to(build)
    assert "REPLAY_COMPILED" not in done.stderr  # no fallback warning
    assert len(pure["fps"]) > len(list((ROOT / "ideacards").glob("*.yaml"))) + 8 + 4 + 4
    assert compiled["fps"] == pure["fps"]
    assert compiled["summaries"] == pure["summaries"]


def test_every_conversion_to_a_double_in_the_compiled_code_is_audited(build: Path) -> None:
    manifest = json.loads((build / MANIFEST).read_text())
    assert manifest["double_conversions"] == AUDITED


ANNOTATIONS = """\
import importlib, json, msgspec
from tools.build_compiled import MODULES
out = {}
for name in (m[:-3].replace("/", ".") for m in MODULES):
    for k, v in vars(importlib.import_module(name)).items():
        if isinstance(v, type) and issubclass(v, msgspec.Struct) and v.__module__ == name:
            anns = v.__dict__.get("__annotations__", {})
            out[f"{name}.{k}"] = {
                f: a.strip("'\\"") if isinstance(a, str) else a.__name__ for f, a in anns.items()
            }
print(json.dumps(out))
"""


def test_msgspec_sees_the_same_field_types_in_compiled_modules(build: Path) -> None:
    """mypyc writes a non-native class's annotations as bare runtime types (``dict[str,
    Order]`` -> ``dict``), which msgspec would decode by; a quoted annotation survives."""
    pure = json.loads(_python(ANNOTATIONS, compiled_dir=None).stdout)
    compiled = json.loads(_python(ANNOTATIONS, compiled_dir=build).stdout)
    assert len(pure) >= 20
    differ = {
        f"{cls}.{f}" for cls, fields in pure.items() for f, a in fields.items()
        if compiled[cls][f] != a
    }  # fmt: skip
    # Never decoded with msgspec (built in place, or pickled to pool workers), so their
    # erased annotations change nothing; a union is erased even when quoted.
    assert differ == {
        "replay.core.Divergence.expected",
        "replay.core.Divergence.got",
        "replay.core.Refolded.divergence",
        "replay.sweep.trial.TrialTask.params",
        "replay.sweep.trial.ShippedLog.meta",
        "replay.sweep.trial.ShippedLog.records",
    }


def test_a_stale_build_falls_back_to_pure_python_with_a_warning(
    build: Path, tmp_path: Path
) -> None:
    stale = tmp_path / "stale"
    stale.mkdir()
    manifest = json.loads((build / MANIFEST).read_text())
    manifest["sources"]["engine/core.py"] = "0" * 64  # as if engine/core.py were edited
    (stale / MANIFEST).write_text(json.dumps(manifest))
    for rel in manifest["extensions"].values():  # the same extension files
        (stale / rel).parent.mkdir(parents=True, exist_ok=True)
        (stale / rel).symlink_to(build / rel)
    probe = "import engine.core, eventstore.chain; print(engine.core.__file__)"
    done = _python(probe, compiled_dir=stale)
    assert done.stdout.strip() == str(ROOT / "engine" / "core.py")
    assert done.stderr.count("REPLAY_COMPILED=1 but sources changed") == 1
    assert "engine/core.py" in done.stderr
    fresh = _python(probe, compiled_dir=build)  # the same files with a current manifest
    assert fresh.stdout.strip().endswith(SUFFIX) and fresh.stderr == ""


def test_a_value_other_than_1_or_0_is_named_not_ignored(build: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, DIR_ENV)}
    env.update(PYTHONPATH=str(ROOT), **{ENV: "yes", DIR_ENV: str(build)})
    done = subprocess.run(
        [sys.executable, "-c", "import engine.core; print(engine.core.__file__)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == str(ROOT / "engine" / "core.py")
    assert "REPLAY_COMPILED='yes' is not 1 or 0" in done.stderr
