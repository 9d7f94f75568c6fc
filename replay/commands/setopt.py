"""``--set NAME=VALUE``, declared once for run, check, demo and live."""

from __future__ import annotations

import click

set_option = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override one of the card's params (repeatable), e.g. --set fast=20.",
)


def parse_set_option(sets: tuple[str, ...]) -> dict[str, str]:
    """The overrides; a malformed item is a usage error (exit 2) naming --set."""
    from replay.cards.params import parse_sets

    try:
        return parse_sets(sets)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
