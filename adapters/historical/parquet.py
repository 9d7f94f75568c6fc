"""Parquet candle files: any table with the CSV column names, plus our own exact format.

``write_parquet`` stores the engine's integers (ticks, lots, money) with the
instrument's tick size and qty step in the schema metadata; reading such a file
with the same grid is exact and skips the float conversion. Other Parquet files
are read like a CSV: the same header aliases, prices and volumes as numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from .columns import describe_columns, is_unnamed, map_columns, numbers, times_to_ms
from .errors import DataError
from .raw import RawCandles
from .series import COLUMNS, CandleSeries

FORMAT_KEY: Final = b"replay.candles"
FORMAT_VERSION: Final = b"1"


def write_parquet(series: CandleSeries, path: str | Path) -> None:
    """Write a series exactly (int64 columns) with its grid and timeframe in the metadata."""
    meta = {
        FORMAT_KEY: FORMAT_VERSION,
        b"symbol": series.symbol.encode(),
        b"timeframe": series.timeframe.encode(),
        b"tick_size": series.instrument.spec.tick_size.encode(),
        b"qty_step": series.instrument.spec.qty_step.encode(),
    }
    arrays = [pa.array(col, type=pa.int64()) for col in series.columns().values()]
    table = pa.Table.from_arrays(arrays, names=list(COLUMNS)).replace_schema_metadata(meta)
    import pyarrow.parquet as pq  # here, not at import: 70 ms (and ssl) a CSV run never needs

    pq.write_table(table, str(path))


def read_parquet_table(path: str | Path) -> pa.Table:
    import pyarrow.parquet as pq  # see write_parquet

    try:
        return pq.read_table(str(path))
    except FileNotFoundError:
        raise DataError(str(path), 0, "file not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(str(path), 0, f"not a readable Parquet file ({exc})") from None


def is_exact(table: pa.Table) -> bool:
    """True for a file written by ``write_parquet``."""
    meta = table.schema.metadata or {}
    return meta.get(FORMAT_KEY) == FORMAT_VERSION


def exact_meta(table: pa.Table) -> dict[str, str]:
    meta = table.schema.metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}


def exact_columns(table: pa.Table) -> dict[str, np.ndarray]:
    return {name: numbers(table.column(name), np.int64) for name in COLUMNS}


def raw_from_table(path: str, table: pa.Table) -> RawCandles:
    """A foreign Parquet table (named columns of numbers) to raw columns."""
    names = table.column_names
    roles = map_columns(path, names, index_column=_index_column(table))

    def column(role: str) -> pa.ChunkedArray:
        return table.column(roles[role])

    def error(i: int, what: str = "time value is missing or not understood") -> DataError:
        return DataError(path, i + 1, what)

    for role in ("open", "high", "low", "close", "volume", "turnover"):
        if role in roles and column(role).null_count:
            raise error(int(np.argmax(np.asarray(column(role).is_null()))), f"empty {role} value")

    def floats(role: str) -> np.ndarray:
        try:
            return numbers(column(role).cast(pa.float64()), np.float64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                path, 0, f"{role} column is not numeric", str(column(role).type)
            ) from None

    return RawCandles(
        path,
        times_to_ms(path, column("time"), error),
        floats("open"),
        floats("high"),
        floats("low"),
        floats("close"),
        floats("volume"),
        floats("turnover") if "turnover" in roles else None,
        found=describe_columns(names, roles),
    )


def _index_column(table: pa.Table) -> int | None:
    """The position of a pandas index written into the file (``df.to_parquet()``), if any."""
    names = table.column_names
    meta = (table.schema.metadata or {}).get(b"pandas")
    if meta:
        try:
            index = json.loads(meta).get("index_columns", [])
        except ValueError:
            index = []
        for name in index:
            if isinstance(name, str) and name in names:
                return names.index(name)
    for i, name in enumerate(names):
        if is_unnamed(name):
            return i
    return None
