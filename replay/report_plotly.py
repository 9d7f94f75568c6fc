"""Plotly figures written as the JSON plotly.js reads, without plotly's Python figure classes.

Building a report's figures through ``plotly.graph_objects`` cost about 0.25 s of CPU per
report (the import, deep copies of the template, each property validated), more than
drawing needs: this module writes the same figure dicts (stacked subplots as
``make_subplots(shared_xaxes=True)`` lays them out, the plotly_white template, float
arrays as plotly's base64 typed arrays) and the same ``<div>`` as ``plotly.io.to_html``.
plotly.js and the template are read from the installed plotly package's data files.
``tests/test_report_plotly.py`` holds each piece equal to what plotly itself builds.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

Fig = dict[str, Any]

#: plotly's ``RdYlGn`` colorscale (plotly.colors.diverging.RdYlGn), as it writes it.
RD_YL_GN: Final = (
    "rgb(165,0,38)", "rgb(215,48,39)", "rgb(244,109,67)", "rgb(253,174,97)",
    "rgb(254,224,139)", "rgb(255,255,191)", "rgb(217,239,139)", "rgb(166,217,106)",
    "rgb(102,189,99)", "rgb(26,152,80)", "rgb(0,104,55)",
)  # fmt: skip

_SWAPS: Final = (("<", "\\u003c"), (">", "\\u003e"), ("/", "\\u002f"))  # as plotly.io writes
_CONFIG: Final = '{"responsive": true}'
_WINDOW_CONFIG: Final = "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"


def _package_data() -> Path:
    """plotly's package_data folder, found without importing plotly."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("plotly is not installed: the report needs its plotly.js")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data"


@functools.cache
def template(name: str = "plotly_white") -> dict[str, Any]:
    """A plotly template as the figure's ``layout.template`` holds it."""
    loaded: dict[str, Any] = json.loads(
        (_package_data() / "templates" / f"{name}.json").read_text()
    )
    return loaded


def plotly_js() -> Iterator[str]:
    """The plotly.js bundle the installed plotly inlines into a page, a MiB at a time (the
    text as it is in the file: no newline translation)."""
    with (_package_data() / "plotly.min.js").open(encoding="utf-8", newline="") as fh:
        while part := fh.read(1 << 20):
            yield part


def typed(values: np.ndarray) -> Any:
    """A float64 array as plotly writes a numpy float array: base64 little-endian doubles
    (NaN kept: a gap), or an empty list."""
    values = np.ascontiguousarray(values, dtype="<f8")
    if values.size == 0:
        return []
    return {"dtype": "f8", "bdata": base64.b64encode(values.tobytes()).decode("ascii")}


def axis_ref(row: int) -> tuple[str, str]:
    """The x and y axis names of subplot row ``row`` (1-based) in a trace."""
    suffix = "" if row == 1 else str(row)
    return f"x{suffix}", f"y{suffix}"


def stacked_layout(heights: list[float], titles: list[str], spacing: float) -> dict[str, Any]:
    """The layout ``make_subplots(rows=len(heights), cols=1, shared_xaxes=True,
    row_heights=heights, vertical_spacing=spacing, subplot_titles=titles)`` builds, the top
    row first: every x axis matches the bottom one, whose tick labels alone are shown."""
    rows = len(heights)
    total = float(sum(heights))
    scaled = [(1.0 - spacing * (rows - 1)) * (h / total) for h in heights]
    bottom_up = scaled[::-1]
    layout: dict[str, Any] = {}
    annotations = []
    for r in range(rows):
        k = rows - 1 - r  # plotly's grid counts from the bottom
        start = sum(bottom_up[:k]) + k * spacing
        y0, y1 = _clip(start + 0.0), _clip(start + scaled[r] - 0.0)
        x_name, y_name = axis_ref(r + 1)
        xaxis: dict[str, Any] = {"anchor": y_name, "domain": [0.0, 1.0]}
        if r < rows - 1:
            xaxis.update(matches=f"x{rows}", showticklabels=False)
        layout[x_name.replace("x", "xaxis")] = xaxis
        layout[y_name.replace("y", "yaxis")] = {"anchor": x_name, "domain": [y0, y1]}
        if titles[r]:
            annotations.append(
                {"font": {"size": 16}, "showarrow": False, "text": titles[r], "x": 0.5,
                 "xanchor": "center", "xref": "paper", "y": y1, "yanchor": "bottom",
                 "yref": "paper"}
            )  # fmt: skip
    layout["annotations"] = annotations
    return layout


def _clip(edge: float) -> float:
    """plotly's rounding of a domain edge just outside [0, 1] (float error) onto it."""
    return min(max(edge, 0.0), 1.0) if -0.01 < edge < 1.01 else edge


def _json(value: Any) -> str:
    """Compact JSON as plotly.io writes it: NaN and infinities as null, and ``<``, ``>``
    and ``/`` escaped so the text is safe inside a ``<script>``."""
    text = json.dumps(value, separators=(",", ":"))
    if "NaN" in text or "Infinity" in text:  # plotly's rule: re-read with them as null
        text = json.dumps(json.loads(text, parse_constant=lambda _: None), separators=(",", ":"))
    for unsafe, safe in _SWAPS:
        text = text.replace(unsafe, safe)
    return text


def div(fig: Fig, include_plotlyjs: bool, div_id: str | None = None) -> str:
    """The ``<div>`` ``plotly.io.to_html(fig, full_html=False, include_plotlyjs=...)``
    writes for ``fig`` (a dict with ``data`` and ``layout``; its height in px)."""
    return "".join(div_parts(fig, include_plotlyjs, div_id))


def div_parts(fig: Fig, include_plotlyjs: bool, div_id: str | None = None) -> Iterator[str]:
    """``div`` in pieces, to be written one after the other: the 4.6 MB of plotly.js is
    then never copied into a joined page."""
    plot_id = div_id or str(uuid.uuid4())
    height = fig["layout"].get("height")
    height_css = f"{height}px" if height is not None else "100%"
    yield (
        f'<div style="height:{height_css}; width:100%;">'
        "        "  # plotly's place for a MathJax script, none here
        "        "
    )
    if include_plotlyjs:
        yield f"        {_WINDOW_CONFIG}\n        <script>"
        yield from plotly_js()
        yield "</script>    "
    yield (
        f'            <div id="{plot_id}" class="plotly-graph-div" '
        'style="height:100%; width:100%;"></div>'
        "            <script>"
        "                window.PLOTLYENV=window.PLOTLYENV || {};"
        "                "
        f'                if (document.getElementById("{plot_id}")) {{'
        "                    Plotly.newPlot("
        f'                        "{plot_id}",'
        "                        "
    )
    yield _json(fig["data"])
    yield ",                        "
    yield _json(fig["layout"])
    yield (
        f",                        {_CONFIG}"
        "                    )"
        "                };"
        "            </script>"
        "        </div>"
    )
