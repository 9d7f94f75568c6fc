"""Headless Chromium for the report tests: the page's DOM after its JavaScript ran."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(
    chromium() is None, reason="no Chromium here (apt-get install chromium enables this test)"
)


def rendered_dom(page: Path, profile: Path, budget_ms: int = 10_000) -> str:
    """``page`` rendered offline by headless Chromium, as the DOM it ended with."""
    browser = chromium()
    assert browser is not None
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout  # fmt: skip
