"""The ``replay`` command line: one click group, one sub-command per job."""

from __future__ import annotations

import click

from replay import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="replay")
def cli() -> None:
    """replay: a deterministic, event-sourced trading engine for Bybit perpetuals."""


@cli.command()
def run() -> None:
    """Backtest an IdeaCard (placeholder until the backtest runner lands)."""
    click.echo("replay run: the backtest runner is not built yet; see the open issues.")


def main() -> None:
    cli()
