"""The peer-benchmark venv, ``.venv-peers/`` at the repo root, shared by the bench tools.

The peers (backtesting.py and what it needs) live in their own venv so they never
touch the project's; ``ensure`` creates it on first use with the ordinary pip client
and installs what is missing, then returns its python.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-peers"


def python() -> Path:
    return VENV / "bin" / "python"


def has(module: str) -> bool:
    if not python().exists():
        return False
    probe = subprocess.run([str(python()), "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def ensure(packages: dict[str, str]) -> Path:
    """``packages``: import name -> pip requirement, e.g. {"backtesting": "backtesting"}."""
    if not python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    missing = [req for module, req in packages.items() if not has(module)]
    if missing:
        subprocess.run([str(python()), "-m", "pip", "install", "--quiet", *missing], check=True)
    return python()
