"""Funding rate history in: a CSV, or the JSON of Bybit's ``/v5/market/funding/history``.

CSV: a header naming a time column (``timestamp``, ``time``, ``fundingRateTimestamp``) and
a rate column (``rate``, ``funding_rate``, ``fundingRate``); times in epoch milliseconds,
rates as decimals per interval ("0.0001" is 0.01 %). ``replay data fetch --funding``
writes exactly this (``timestamp,rate``).

JSON: the whole response envelope, its ``result``, or its ``list``: items with
``fundingRateTimestamp`` and ``fundingRate`` (strings, newest first as Bybit sends them).

The result is ``((time_ms, rate_e8), ...)`` oldest first, one rate per time, as
``SimConfig.funding_series`` takes it. Rates are kept to 1e-8 (half-even), like fees.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.instrument import rate_from_str

from .errors import DataError

_TIME_COLUMNS = ("timestamp", "time", "fundingratetimestamp", "funding_time")
_RATE_COLUMNS = ("rate", "funding_rate", "fundingrate")
_MAX_RATE = Decimal("0.05")  # 5 % per interval: beyond any venue's cap, a unit mistake
_EXPECTED_TIME = "epoch milliseconds, e.g. 1704067200000"
_EXPECTED_RATE = "a decimal rate per interval within +-0.05, e.g. 0.0001"

Series = tuple[tuple[int, int], ...]


def load_funding(path: Path) -> Series:
    """Read a funding file (CSV or JSON, by content); ``DataError`` names what is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(str(path), 0, "cannot read the funding file", str(exc)) from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        pairs = _from_json(path, stripped)
    else:
        pairs = _from_csv(path, text)
    if not pairs:
        raise DataError(str(path), 0, "no funding rates", "", "at least one time and rate")
    out: dict[int, int] = {}
    for row, (ts, rate) in enumerate(pairs, 1):
        if ts in out and out[ts] != rate:
            raise DataError(str(path), row, "two different rates for one time", str(ts))
        out[ts] = rate
    return tuple(sorted(out.items()))


def _time(path: Path, row: int, value: Any, line: int, item: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or len(text) < 11:
        raise DataError(
            str(path), row, "bad funding time", repr(value), _EXPECTED_TIME, line=line, item=item
        )
    return int(text)


def _rate(path: Path, row: int, value: Any, line: int, item: str) -> int:
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        d = Decimal("NaN")
    if not d.is_finite() or abs(d) > _MAX_RATE:
        raise DataError(
            str(path), row, "bad funding rate", repr(value), _EXPECTED_RATE, line=line, item=item
        )
    return rate_from_str(d)


def _from_csv(path: Path, text: str) -> list[tuple[int, int]]:
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    t_col = next((header.index(c) for c in _TIME_COLUMNS if c in header), -1)
    r_col = next((header.index(c) for c in _RATE_COLUMNS if c in header), -1)
    if t_col < 0 or r_col < 0:
        raise DataError(
            str(path),
            0,
            "the header names no time and rate columns",
            ",".join(header),
            "a header such as timestamp,rate",
            line=1,
        )
    out: list[tuple[int, int]] = []
    for row, cells in enumerate(reader, 1):
        if not any(c.strip() for c in cells):
            continue
        line = row + 1
        if len(cells) <= max(t_col, r_col):
            raise DataError(
                str(path),
                row,
                "too few columns",
                ",".join(cells),
                f"{len(header)} columns",
                line=line,
            )
        out.append(
            (
                _time(path, row, cells[t_col], line, "row"),
                _rate(path, row, cells[r_col], line, "row"),
            )
        )
    return out


def _from_json(path: Path, text: str) -> list[tuple[int, int]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(str(path), 0, "not valid JSON", str(exc)) from None
    if isinstance(data, dict) and "retCode" in data and data.get("retCode") != 0:
        raise DataError(
            str(path),
            0,
            "the saved response is an error",
            f"retCode {data.get('retCode')}",
            "retCode 0",
        )
    if isinstance(data, dict):
        data = data.get("result", data)
    if isinstance(data, dict):
        data = data.get("list")
    if not isinstance(data, list):
        raise DataError(str(path), 0, "no funding list", "", "result.list of the response")
    out: list[tuple[int, int]] = []
    for row, item in enumerate(data, 1):
        where = "result.list item"
        if not isinstance(item, dict):
            raise DataError(str(path), row, "not an object", repr(item), "an object", item=where)
        out.append(
            (
                _time(path, row, item.get("fundingRateTimestamp"), 0, where),
                _rate(path, row, item.get("fundingRate"), 0, where),
            )
        )
    return out
