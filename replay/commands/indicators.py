"""``replay indicators``: the indicator reference, generated from the registry."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("names", nargs=-1)
@click.option("--markdown", is_flag=True, help="The table of ideacards/README.md instead.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def indicators(names: tuple[str, ...], markdown: bool, as_json: bool) -> None:
    """List the indicators a card can use, with their parameters.

    For each: parameters and defaults, outputs and units, when it is ready,
    whether the current bar is included, and how it is seeded (vs TA-Lib).

    Example: replay indicators atr macd
    """
    from engine.indicators import INDICATORS, IndicatorError, get_spec
    from replay import indicator_reference as ref

    try:
        chosen = [get_spec(n.lower()).name for n in names]
    except IndicatorError as exc:
        raise _BadName(str(exc)) from None
    if markdown:
        click.echo(ref.markdown_table())
    elif as_json:
        specs = [INDICATORS[n] for n in chosen or INDICATORS]
        click.echo(json.dumps([ref.as_dict(s) for s in specs], indent=2))
    else:
        click.echo(ref.text(chosen or None), nl=False)


class _BadName(click.ClickException):
    exit_code = 2
