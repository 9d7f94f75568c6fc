"""``make compiled``: build the hot modules with mypyc into ``.compiled/`` (out of the
source tree) and write its manifest; ``REPLAY_COMPILED=1`` then uses them (tools/compiled.py).

Usage: python tools/build_compiled.py [--out DIR] [--clean]. Needs mypy (a dev dependency)
and a C compiler with the Python headers. Left out on purpose: engine/indicators (all or
nothing: an interpreted subclass of a compiled class is refused) and engine/intents.py
(an Intent's float fields may hold a Python strategy's ints, which compiled reads would
turn into doubles).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Final

from tools.compiled import BUILD_DIR, MANIFEST, ROOT, source_hashes

#: The compiled modules (source paths relative to the repository root).
MODULES: Final = (
    *(
        f"engine/{m}.py"
        for m in (
            "core", "plan", "orders", "book", "positions", "risk", "commands", "state",
            "conditions", "execution", "protection", "ownership", "lags",
        )
    ),
    *(f"adapters/sim/{m}.py" for m in ("venue", "orders", "path", "margin", "funding")),
    "adapters/historical/bulk.py",
    "replay/core.py",
    "replay/session.py",
    "replay/fastpath.py",
    "replay/sweep/trial.py",  # its TestWindowView subclasses AccountView (compiled)
    "projections/account.py",
    "projections/trade_story.py",
    "projections/refusals.py",
    "eventstore/chain.py",
)  # fmt: skip

_SETUP: Final = """\
import sys
from setuptools import setup
from mypyc.build import mypycify
setup(name="replay-compiled", ext_modules=mypycify(sys.argv[3:], target_dir=sys.argv[2]),
      script_args=["build_ext", "--build-lib", sys.argv[1], "--build-temp", sys.argv[2]])
"""


#: The C calls where mypyc makes a C double of a Python int or object (tagged int -> double,
#: object -> double) or divides two ints in doubles; tests/test_compiled.py audits each.
_TO_DOUBLE: Final = re.compile(r"\b(CPyFloat_FromTagged|PyFloat_AsDouble|CPyTagged_TrueDivide)\(")
_TRACEBACK: Final = re.compile(r'CPy_AddTraceback\("([^"]+)", "([^"]+)", ')


def double_conversions(c_dir: Path) -> dict[str, int]:
    """How many such calls each source function has ("path:function call": count), found
    in the generated C (a call's function is that of the next traceback entry)."""
    found: dict[str, int] = {}
    for c in sorted(c_dir.rglob("*.c")):
        lines = c.read_text().splitlines()
        for i, line in enumerate(lines):
            call = _TO_DOUBLE.search(line)
            if call is None or line.lstrip().startswith(("double CPy", "#")):
                continue
            where = next((m for m in map(_TRACEBACK.search, lines[i : i + 300]) if m), None)
            key = f"{where[1]}:{where[2]} {call[1]}" if where else f"? {call[1]}"
            found[key] = found.get(key, 0) + 1
    return dict(sorted(found.items()))


def build(out: Path) -> dict[str, object]:
    """Compile ``MODULES`` into ``out`` (replaced) and write its manifest; returns it."""
    before = source_hashes()
    with tempfile.TemporaryDirectory(prefix="replay-mypyc-") as tmp:
        lib = Path(tmp) / "lib"
        # no fused multiply-add: a * b + c rounded once would differ from Python's twice
        cflags = f"{os.environ.get('CFLAGS', '')} -ffp-contract=off".strip()
        env = {**os.environ, "CFLAGS": cflags}
        cmd = [sys.executable, "-c", _SETUP, str(lib), str(Path(tmp) / "c"), *MODULES]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        if source_hashes() != before:
            raise SystemExit("sources changed during the build; run it again")
        conversions = double_conversions(Path(tmp) / "c")
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        extensions = {
            so.relative_to(lib).as_posix().removesuffix(suffix).replace("/", "."): so
            for so in lib.rglob(f"*{suffix}")
        }
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(lib, out)
    manifest: dict[str, object] = {
        "cache_tag": sys.implementation.cache_tag,
        "modules": list(MODULES),
        "extensions": {n: so.relative_to(lib).as_posix() for n, so in sorted(extensions.items())},
        "sources": before,
        "double_conversions": conversions,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=BUILD_DIR, help="build directory")
    ap.add_argument("--clean", action="store_true", help="only remove the build directory")
    args = ap.parse_args()
    if args.clean:
        shutil.rmtree(args.out, ignore_errors=True)
        return
    build(args.out)
    print(f"built {len(MODULES)} modules into {args.out}; use them with REPLAY_COMPILED=1")


if __name__ == "__main__":
    main()
