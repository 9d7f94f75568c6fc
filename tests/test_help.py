"""Every command's --help: a summary that is not cut off, text for every option, an example."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from replay.cli import cli


def walk(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, (*path, name))


COMMANDS = list(walk(cli))


def test_the_walk_finds_the_commands() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"run", "sessions", "sessions rm", "sessions prune", "inspect", "diff"} <= names


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help(path: tuple[str, ...], cmd: click.Command) -> None:
    out = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80)
    assert out.exit_code == 0, out.output
    assert "Example:" in out.output, f"{' '.join(path)}: no example"
    first_line = (cmd.help or "").strip().splitlines()[0]
    # the summary the parent group lists at 80 columns is the whole first line, not cut
    listing = CliRunner().invoke(cli, [*path[:-1], "--help"], terminal_width=80).output
    summary = first_line.rstrip(".")
    assert summary in " ".join(listing.split()), f"{' '.join(path)}: summary cut off"
    assert cmd.get_short_help_str(limit=58).rstrip(".") == summary
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"{' '.join(path)} {param.opts[0]}: no help text"
