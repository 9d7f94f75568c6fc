"""The report's figures written as plain JSON (``replay.report_plotly``) are what plotly's
own classes build: the same subplot layout, template, figure after validation, and page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from click.testing import CliRunner
from plotly.subplots import make_subplots

from replay import report_plotly as rp
from replay.cli import cli
from replay.report import _monthly_heatmap

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("scalar", [0, 1, 2, 5])
def test_stacked_layout_is_make_subplots_layout(scalar: int) -> None:
    heights = [0.45] + [0.12] * scalar + [0.25, 0.15]
    titles = ["Price", *(f"f{i}" for i in range(scalar)), "", "Drawdown %"]  # one untitled
    fig = make_subplots(
        rows=len(heights),
        cols=1,
        shared_xaxes=True,
        row_heights=heights,
        vertical_spacing=0.03,
        subplot_titles=titles,
    )
    want = fig.to_plotly_json()["layout"]
    want.pop("template")  # the default one; the chart sets its own
    assert rp.stacked_layout(heights, titles, 0.03) == want


def test_template_is_plotlys() -> None:
    assert rp.template("plotly_white") == pio.templates["plotly_white"].to_plotly_json()


def test_typed_arrays_are_plotlys() -> None:
    values = np.array([1.5, np.nan, -3.25, 1e300])
    want = json.loads(pio.to_json(go.Figure(go.Scatter(y=values))))["data"][0]["y"]
    assert rp.typed(values) == want
    assert rp.typed(np.zeros(0)) == []


@pytest.mark.parametrize("with_js", [True, False])
def test_div_is_plotlys_page(with_js: bool) -> None:
    fig = {
        "data": [{"type": "scatter", "x": ["a</script>", "b"], "y": [1.0, float("nan")]}],
        "layout": {"height": 321, "title": {"text": "<b>&"}},
    }
    want = pio.to_html(
        fig, full_html=False, include_plotlyjs=with_js, div_id="the-id", validate=False
    )
    assert rp.div(fig, include_plotlyjs=with_js, div_id="the-id") == want


def _validated(fig: dict[str, Any]) -> Any:
    """``fig`` through plotly's validation, as the JSON plotly would write for it."""
    return json.loads(pio.to_json(go.Figure(fig), validate=True))


def _plain(fig: dict[str, Any]) -> Any:
    return json.loads(rp._json(fig))


def test_report_figures_survive_plotlys_validation_unchanged(tmp_path: Path) -> None:
    """Every trace and layout property the chart writes is one plotly knows, in the form
    plotly itself would write (a misspelt key or an uncoerced value fails here)."""
    from replay.backtest import fold_log
    from replay.cards import load_card
    from replay.report_chart import figure
    from replay.report_trades import trade_rows

    store = tmp_path / "runs"
    card = ROOT / "ideacards" / "rsi_reversion.yaml"  # a feature in a pane of its own
    args = ["run", str(card), "--candles", "6000", "--store", str(store), "--session", "s", "-q"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    from eventstore import EventStore

    with EventStore(store) as es:
        _, view = fold_log(es, "s")
    loaded = load_card(card, {})
    instr = view.instrument
    assert instr is not None
    fig, _ = figure(view, instr, trade_rows(view), lambda: loaded.new_strategy(instr))
    assert len(fig["data"]) > 9  # candles, markers, levels, features, equity, drawdown
    assert _validated(fig) == _plain(fig)


def test_monthly_heatmap_is_plotlys() -> None:
    months = [
        {"month": "2024-11", "return": 0.0123},
        {"month": "2024-12", "return": -0.05},
        {"month": "2025-01", "return": 0.0},
    ]
    page = _monthly_heatmap(months)
    start = page.index("[", page.index("Plotly.newPlot("))
    data, end = json.JSONDecoder().raw_decode(page, start)
    layout, _ = json.JSONDecoder().raw_decode(page, page.index("{", end))
    fig = {"data": data, "layout": layout}
    assert _validated(fig) == fig
    plotlys = go.Heatmap(colorscale="RdYlGn").to_plotly_json()["colorscale"]
    assert data[0]["colorscale"] == [list(step) for step in plotlys]
