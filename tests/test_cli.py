"""The console script answers --version and --help, through click and as a subprocess."""

import subprocess
import sys

from click.testing import CliRunner

from replay import __version__
from replay.cli import cli


def test_version_through_click() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_as_subprocess() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from replay.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "event-sourced" in out.stdout


def test_python_dash_m_replay() -> None:
    """``python -m replay`` is the script (``-m replay.cli`` ran cli.py twice and failed)."""
    out = subprocess.run(
        [sys.executable, "-m", "replay", "sweeps", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sweeps" in out.stdout
