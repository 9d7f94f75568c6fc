"""``replay sweep`` (run, rerun, show) and ``replay sweeps`` (list, rm): the click layer.

Registered in ``replay.cli`` after its helpers are defined; heavy imports stay inside
the commands so ``replay --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from replay.cli import BadInput, _echo_json, _open_store, handle_errors, json_option, store_option
from replay.commands.data import gaps_option, stamps_option
from replay.session_ids import SESSION_ID
from replay.sweep.progress import Progress


class _SweepGroup(click.Group):
    """``replay sweep CARD ...`` runs a sweep; ``replay sweep show|rerun ...`` the others."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(
            "replay sweep", "CARD --data FILE [OPTIONS] | show SWEEP | rerun SWEEP N"
        )


@click.group("sweep", cls=_SweepGroup)
def sweep_group() -> None:
    """Search a card's params (grid, random, Optuna TPE).

    Resumable: the same command finds its sweep and runs only what is missing.

    \b
    Example:
      replay sweep card.yaml --data btc.parquet --grid fast=5:50:5 --grid slow=20:200:20 \\
          --where 'fast<slow' --min-trades 30
      replay sweep card.yaml --data btc.parquet --optuna 200 --seed 1 --workers 2
      replay sweep show ma_cross-sweep-1a2b3c4d
      replay sweep rerun ma_cross-sweep-1a2b3c4d 17
    """


@sweep_group.command("run")
@click.argument("card", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Candle file (CSV or Parquet), as for replay run.",
)
@click.option(
    "--grid",
    "grids",
    multiple=True,
    metavar="NAME=MIN:MAX:STEP|V1,V2",
    help="Values of one param (repeatable); over the card's sweep: ranges.",
)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="A<B",
    help="Keep only combinations where this holds, e.g. 'fast<slow' (repeatable).",
)
@click.option("--random", "random_n", type=click.IntRange(min=1), help="N seeded random trials.")
@click.option("--optuna", "optuna_n", type=click.IntRange(min=1), help="N Optuna TPE trials.")
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Optuna: trials asked before they are told (fixed, so results do not "
    "depend on the workers).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random / Optuna.")
@click.option(
    "--objective",
    default="sharpe",
    show_default=True,
    help="Summary metric to maximize ('-max_drawdown' minimizes).",
)
@click.option(
    "--min-trades",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Trials with fewer trades do not qualify.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local worker processes (default: the CPU count).",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="auto|ADDRESS",
    help="Run trials as Ray tasks: 'auto' (the running cluster, else a local one) "
    "or a cluster address.",
)
@click.option(
    "--keep-logs",
    type=click.Choice(["none", "best", "all"]),
    default="none",
    show_default=True,
    help="Which trials' event logs stay in the store.",
)
@click.option(
    "--walk-forward",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="K walk-forward folds: optimize on each train window, test on the next.",
)
@click.option(
    "--rolling", is_flag=True, help="Walk-forward train windows roll (default: anchored)."
)
@click.option("--name", help="Sweep id (default: card name and a digest of the inputs).")
@click.option("--balance", default="10000", show_default=True, help="Initial balance, USDT.")
@stamps_option
@gaps_option
@store_option
@json_option
@click.option("--no-report", is_flag=True, help="Skip the HTML sweep report.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no table.")
@handle_errors
def sweep_run(
    card: Path,
    data: Path,
    grids: tuple[str, ...],
    where: tuple[str, ...],
    random_n: int | None,
    optuna_n: int | None,
    batch: int,
    seed: int,
    objective: str,
    min_trades: int,
    workers: int | None,
    ray_address: str | None,
    keep_logs: str,
    walk_forward: int | None,
    rolling: bool,
    name: str | None,
    balance: str,
    stamps: str,
    gaps: str,
    store_dir: Path,
    as_json: bool,
    no_report: bool,
    quiet: bool,
) -> None:
    """Run a sweep, or resume it with the same command.

    Example: replay sweep card.yaml --data btc.parquet --grid fast=5:50:5 --where 'fast<slow'
    """
    from replay.sweep.runner import SweepConfig, run
    from replay.sweep.view import fold

    if random_n and optuna_n:
        raise BadInput("--random and --optuna: choose one search")
    search = "random" if random_n else "optuna" if optuna_n else "grid"
    cfg = SweepConfig(
        card=card,
        data=data,
        store=store_dir,
        grids=list(grids),
        where=list(where),
        search=search,
        trials=random_n or optuna_n or 0,
        batch=batch,
        seed=seed,
        objective=objective,
        min_trades=min_trades,
        workers=workers or os.cpu_count() or 1,
        ray=ray_address,
        keep_logs=keep_logs,
        name=name,
        balance=balance,
        stamps=stamps,
        gaps=gaps,
        walk_forward=walk_forward or 0,
        rolling=rolling,
    )
    progress = None if (as_json or quiet) else _Bar()
    view = fold(run(cfg, progress))
    report = None
    if not no_report:
        from replay.sweep.report import write

        report = write(view, store_dir / "reports" / view.started.sweep_id / "sweep.html")
    if as_json:
        _echo_json({**view.as_json(), "report": str(report) if report else None})
    elif not quiet:
        _print(view)
        if report is not None:
            click.echo(f"report: {report}")


@sweep_group.command("show")
@click.argument("sweep_id", type=SESSION_ID)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many of the best trials to list.",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the sweep report (self-contained HTML) here.",
)
@store_option
@json_option
@handle_errors
def sweep_show(
    sweep_id: str, top: int, html_out: Path | None, store_dir: Path, as_json: bool
) -> None:
    """Show a sweep: best trials, DSR and PBO.

    Example: replay sweep show ma_cross-sweep-1a2b3c4d --html sweep.html
    """
    from replay.sweep.runner import read
    from replay.sweep.view import fold

    view = fold(read(_open_store(store_dir), sweep_id))
    if html_out is not None:
        from replay.sweep.report import write

        write(view, html_out)
    if as_json:
        _echo_json(view.as_json())
    else:
        _print(view, top)
        if html_out is not None:
            click.echo(f"report: {html_out}")


@sweep_group.command("rerun")
@click.argument("sweep_id", type=SESSION_ID)
@click.argument("trial")
@store_option
@json_option
@handle_errors
def sweep_rerun(sweep_id: str, trial: str, store_dir: Path, as_json: bool) -> None:
    """Rebuild one trial as a full session.

    The session gets exactly the fingerprint the sweep recorded (exit 3 if not).
    TRIAL is its number (17), or for walk-forward f2-t0003 / f2-test.

    Example: replay sweep rerun ma_cross-sweep-1a2b3c4d 17
    """
    from replay.errors import EXIT_CORRUPT
    from replay.sweep.runner import rerun

    _open_store(store_dir).close()
    done, fingerprint, existed = rerun(store_dir, sweep_id, trial)
    same = fingerprint == done.fingerprint
    if as_json:
        _echo_json(
            {
                "session": done.session_id,
                "fingerprint": fingerprint,
                "recorded": done.fingerprint,
                "same": same,
                "existed": existed,
            }
        )
    else:
        click.echo(f"session {done.session_id}{' (already there)' if existed else ''}")
        click.echo(f"fingerprint {fingerprint} ({'matches' if same else 'DIFFERS from'} the sweep)")
    if not same:
        sys.exit(EXIT_CORRUPT)


@click.group("sweeps", invoke_without_command=True)
@store_option
@json_option
@click.pass_context
@handle_errors
def sweeps_group(ctx: click.Context, store_dir: Path, as_json: bool) -> None:
    """List the sweeps in a store; rm deletes them.

    Example: replay sweeps --store runs
    """
    if ctx.invoked_subcommand is not None:
        return
    from replay.sweep.listing import rows

    listed = rows(_open_store(store_dir))
    if as_json:
        for row in listed:
            _echo_json(row)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweeps in {store_dir}", box=None, pad_edge=False)
    for col in ("id", "search", "trials", "objective", "best", "status"):
        table.add_column(col, overflow="fold")
    for r in listed:
        best = "-" if r["best_value"] is None else f"{r['best_value']:.4g} ({r['best_params']})"
        table.add_row(
            r["id"], r["search"], f"{r['done']}/{r['planned']}", r["objective"], best, r["status"]
        )
    Console(width=min(Console().width, 110)).print(table)


@sweeps_group.command("rm")
@click.argument("ids", nargs=-1, required=True, type=SESSION_ID)
@store_option
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@json_option
@handle_errors
def sweeps_rm(ids: tuple[str, ...], store_dir: Path, yes: bool, as_json: bool) -> None:
    """Delete sweeps, their trial sessions and reports.

    Example: replay sweeps rm ma_cross-sweep-1a2b3c4d --yes
    """
    from replay.sweep.listing import plan, remove

    store = _open_store(store_dir)
    removals = plan(store, list(ids))
    if not yes:
        for sid, names in removals:
            click.echo(f"  {sid}: {', '.join(names)}", err=True)
        if as_json or not click.confirm(f"Delete {len(removals)} sweep(s)?", err=True):
            raise BadInput("nothing deleted (pass --yes to delete without asking)")
    for sid, names in removals:
        records = remove(store, store_dir, sid, names)
        if as_json:
            _echo_json({"deleted": sid, "streams": names, "records": records})
        else:
            click.echo(f"deleted {sid} ({len(names)} stream(s), {records:,} events)")


# Declared, so that replay.cli (which imports this module as it loads) sees their types.
sweep: click.Group = sweep_group
sweeps: click.Group = sweeps_group


class _Bar(Progress):
    """A rich progress bar with ETA on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int, done: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "sweep",
            BarColumn(),
            MofNCompleteColumn(),
            "trials",
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("sweep", total=total, completed=done)

    def advance(self, trial: Any) -> None:
        self._bar.advance(self._task)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _print(view: Any, top: int = 10) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from replay.sweep import stats
    from replay.sweep.runner import objective_value

    s = view.started
    console = Console()
    title = f"sweep {s.sweep_id} — {s.search}, {len(view.trials)}/{view.planned} trials"
    console.print(escape(title))
    table = Table(box=None, pad_edge=False)
    for col in ("#", "params", s.objective, "trades", "return", "max DD", "sharpe"):
        table.add_column(escape(col), justify="left" if col == "params" else "right")
    for t in view.ranked()[:top]:
        m = t.metrics
        table.add_row(
            str(t.number),
            escape(" ".join(f"{k}={v}" for k, v in t.params.items())),
            f"{objective_value(s, t):.4g}",
            f"{m['trades']:.0f}",
            f"{m['total_return']:+.2%}",
            f"{m['max_drawdown']:.2%}",
            f"{m['sharpe']:.2f}",
        )
    if view.ranked():
        console.print(table)
    skipped = sum(1 for t in view.trials if objective_value(s, t) is None)
    if skipped:
        console.print(f"{skipped} trial(s) did not qualify (--where, --min-trades {s.min_trades})")
    if view.best is None and not view.folds:
        console.print("[yellow]no trial qualified[/yellow]")
    elif view.best is not None:
        b = view.best
        console.print(
            escape(
                f"best: trial {b.number} ({' '.join(f'{k}={v}' for k, v in b.params.items())}), "
                f"session {b.session_id}, fingerprint {b.fingerprint}"
            )
        )
    if view.folds:
        wf = Table(title=f"walk-forward, {'rolling' if s.rolling else 'anchored'}", box=None)
        for col in (
            "fold",
            "train rows",
            "test rows",
            "params",
            "in sample",
            "out of sample",
            "OOS return",
            "OOS trades",
        ):
            wf.add_column(col, justify="left" if col == "params" else "right")
        for f in view.folds:
            wf.add_row(
                str(f.fold),
                f"{f.train[0]:,}..{f.train[1]:,}",
                f"{f.test[0]:,}..{f.test[1]:,}" if f.test else "-",
                escape(" ".join(f"{k}={v}" for k, v in f.params.items())),
                _fmt(f.in_sample),
                _fmt(f.out_of_sample),
                "-" if f.oos_return is None else f"{f.oos_return:+.2%}",
                "-" if f.oos_trades is None else str(f.oos_trades),
            )
        console.print(wf)
        if view.oos_equity:
            console.print(f"stitched out-of-sample return: {view.oos_equity[-1] - 1:+.2%}")
        return
    console.print(escape(stats.dsr_reading(view.dsr)))
    console.print(escape(stats.pbo_reading(view.pbo)))
    if not view.finished:
        console.print("[yellow]unfinished: run the same command again to resume[/yellow]")
