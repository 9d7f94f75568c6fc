"""``replay check CARD...``: is each card valid for ``replay run`` (``replay.cards.check``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from replay.cards.check import check_card
from replay.commands.data import store_dir_option
from replay.commands.setopt import parse_set_option, set_option


@click.command()
@click.argument("cards", nargs=-1, required=True, type=click.Path(path_type=Path))
@set_option
@click.option("--instrument", default=None, help="Instrument filters, as for replay run.")
@click.option("--timeframe", default=None, help="Check at this execution timeframe, e.g. 15m.")
@store_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(
    cards: tuple[Path, ...],
    sets: tuple[str, ...],
    instrument: str | None,
    timeframe: str | None,
    store_dir: Path,
    as_json: bool,
) -> None:
    """Check cards as replay run would, without running them.

    One line per card; exit 2 if any is invalid. A card is valid when it loads
    and its symbol has an instrument (--instrument, the card's instrument:, the
    store's instruments cache or the built-in table), exactly as replay run decides.

    Example: replay check ideacards/*.yaml --set fast=20
    """
    overrides = parse_set_option(sets)
    verdicts = [
        check_card(p, overrides, store=store_dir, instrument=instrument, timeframe=timeframe)
        for p in cards
    ]
    if as_json:
        click.echo(json.dumps([v.as_json() for v in verdicts], indent=2))
    else:
        for v in verdicts:
            for warning in v.warnings:
                click.echo(warning, err=True)
            click.echo(v.line())
    sys.stdout.flush()
    if not all(v.ok for v in verdicts):
        sys.exit(2)
