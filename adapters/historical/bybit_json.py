"""Bybit v5 kline JSON, exactly as ``GET /v5/market/kline`` returns it.

Accepted shapes: the full envelope ``{"retCode": 0, "result": {"list": [...]}}``,
its ``result`` object, or a bare list. Each item is
``[startTime, open, high, low, close, volume, turnover]`` as strings. Bybit sends
the list newest first; it is reversed here (a list already oldest first is kept),
and error messages name the item's position in the file's ``result.list``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from .errors import DataError
from .raw import RawCandles

ITEM = "result.list item"


def read_bybit_json(path: str | Path) -> RawCandles:
    """Read a saved kline response into raw columns, oldest first."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            doc: Any = msgspec.json.decode(f.read())
    except FileNotFoundError:
        raise DataError(path, 0, "file not found") from None
    except msgspec.DecodeError as exc:
        raise DataError(path, 0, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise DataError(path, 0, "JSON nested too deeply", "", "a Bybit kline response") from None
    items = _items(path, doc)
    return parse_kline_list(path, items)


def parse_kline_list(path: str, items: list[Any]) -> RawCandles:
    """Bybit kline arrays (newest or oldest first) to raw columns, oldest first."""
    n = len(items)
    stamp = np.empty(n, dtype=np.int64)
    values = np.empty((n, 6), dtype=np.float64)
    for k, item in enumerate(items):
        if not isinstance(item, list) or len(item) < 6:
            raise DataError(
                path,
                k + 1,
                "not a kline array",
                repr(item)[:80],
                "[startTime, open, high, low, close, volume, turnover]",
                item=ITEM,
            )
        try:
            stamp[k] = int(item[0])
            values[k, :5] = [float(x) for x in item[1:6]]
            values[k, 5] = float(item[6]) if len(item) > 6 else 0.0
        except (TypeError, ValueError, OverflowError):
            raise DataError(
                path,
                k + 1,
                "kline value is not a number (or out of range)",
                repr(item)[:80],
                "decimal strings",
                item=ITEM,
            ) from None
    rows = np.arange(1, n + 1, dtype=np.int64)
    if n > 1 and stamp[0] > stamp[-1]:  # newest first, as Bybit sends it
        stamp, values, rows = stamp[::-1].copy(), values[::-1].copy(), rows[::-1].copy()
    cols = [np.ascontiguousarray(values[:, j]) for j in range(6)]
    return RawCandles(path, stamp, *cols, rows=rows, item=ITEM)


def _items(path: str, doc: Any) -> list[Any]:
    if isinstance(doc, dict) and "retCode" in doc and doc["retCode"] != 0:
        raise DataError(
            path,
            0,
            "the response is an error",
            f"retCode {doc['retCode']} {doc.get('retMsg', '')!r}",
            "retCode 0",
        )
    if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
        doc = doc["result"]
    if isinstance(doc, dict):
        doc = doc.get("list")
    if not isinstance(doc, list):
        raise DataError(
            path,
            0,
            "not a Bybit kline response",
            "no result.list array",
            '{"result": {"list": [[startTime, open, ...], ...]}}',
        )
    return doc
