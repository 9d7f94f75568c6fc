"""Column names and time values shared by the CSV and Parquet readers.

Header names are matched case-insensitively after trimming spaces, quotes and
underscores. Times may be epoch numbers (seconds, ms, µs or ns, told apart by
magnitude: below 1e11 is seconds, below 1e14 ms, below 1e17 µs, else ns), ISO-8601
text with or without a zone, or naive text, which is read as UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import pyarrow as pa

from .errors import DataError
from .raw import I64

ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "time": (
        "timestamp", "datetime", "opentime", "time", "date", "ts", "t", "starttime", "start",
        "date_time", "open_time", "start_time", "time_utc", "timestamp_utc", "unix", "epoch",
    ),
    "open": ("open", "o", "openprice", "open_price"),
    "high": ("high", "h", "highprice", "high_price"),
    "low": ("low", "l", "lowprice", "low_price"),
    "close": ("close", "c", "closeprice", "close_price"),
    "volume": ("volume", "vol", "v", "basevolume", "base_volume", "volume_btc"),
    "turnover": ("turnover", "quotevolume", "quote_volume", "quoteassetvolume",
                 "quote_asset_volume", "volume_usdt", "value"),
}  # fmt: skip
REQUIRED: Final = ("time", "open", "high", "low", "close", "volume")
#: Column order assumed for a file without a header (Bybit's kline order).
POSITIONAL: Final = ("time", "open", "high", "low", "close", "volume", "turnover")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_STRPTIME_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def normalise(name: str) -> str:
    return name.strip().strip("\"'").strip().lower().replace(" ", "_")


def _canonical(name: str) -> str | None:
    key = normalise(name)
    bare = key.replace("_", "")
    for role, names in ALIASES.items():
        if key in names or bare in names:
            return role
    return None


def map_columns(
    path: str, names: Sequence[str], *, index_column: int | None = None
) -> dict[str, int]:
    """Role ("time", "open", ...) -> column index; raises naming what is missing.

    ``index_column`` is the column to read as the time when no column is named like
    one: a pandas index (``to_csv``'s unnamed first column, Parquet's index).
    """
    found: dict[str, int] = {}
    for i, name in enumerate(names):
        role = _canonical(name)
        if role is not None and role not in found:
            found[role] = i
    if "time" not in found and index_column is not None:
        found["time"] = index_column
    missing = [r for r in REQUIRED if r not in found]
    if missing:
        raise DataError(
            path,
            0,
            f"header lacks column(s) {', '.join(missing)}",
            f"columns {list(names)}",
            "a time column (timestamp, datetime, open_time, time or date) and "
            "open, high, low, close, volume [, turnover]",
        )
    return found


def is_unnamed(name: str) -> bool:
    """A header cell pandas writes for an unnamed index ("", "Unnamed: 0", "index")."""
    key = normalise(name)
    return key in ("", "index", "__index_level_0__") or key.startswith("unnamed:")


def describe_columns(names: Sequence[str], roles: dict[str, int]) -> str:
    """What the column sniffing found, for the user: "time=<unnamed index>, open='Open', ..."."""
    parts = []
    for role in (r for r in ALIASES if r in roles):
        i = roles[role]
        name = names[i]
        shown = f"{name!r}" if not is_unnamed(name) else f"column {i + 1} (unnamed: an index)"
        parts.append(f"{role}={shown}")
    ignored = [repr(n) for i, n in enumerate(names) if i not in roles.values()]
    text = "columns: " + ", ".join(parts)
    return text + (f"; ignored {', '.join(ignored)}" if ignored else "")


_NUMPY_OF: Final = {
    pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
    pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32,
    pa.uint64(): np.uint64, pa.float32(): np.float32, pa.float64(): np.float64,
}  # fmt: skip


def numbers(column: pa.Array | pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    """A numeric arrow column as a new numpy array of ``dtype``, copied from its data
    buffers: pyarrow's own conversion (``to_numpy``, ``np.asarray``) imports pandas on
    first use, 0.2 s of CPU and tens of MB a run never needs. Columns with nulls or
    of other types take pyarrow's conversion."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    kind = _NUMPY_OF.get(column.type)
    if kind is None or column.null_count:
        return np.asarray(column, dtype=dtype)
    parts = [
        np.frombuffer(
            chunk.buffers()[1],
            dtype=kind,
            count=len(chunk),
            offset=chunk.offset * np.dtype(kind).itemsize,
        )
        for chunk in chunks
        if len(chunk)
    ]
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


def times_to_ms(
    path: str, column: pa.Array | pa.ChunkedArray, locate: Callable[[int], DataError]
) -> I64:
    """A time column of any supported type to epoch milliseconds (UTC)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        i = int(np.argmax(np.asarray(column.is_null())))
        raise locate(i)
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        import pyarrow.compute as pc  # here, not at import: 0.1 s epoch numbers never need

        if pa.types.is_date(kind):
            return numbers(pc.cast(column, pa.date64()).cast(pa.int64()), np.int64)
        utc = pa.timestamp("ms", tz=kind.tz)
        return numbers(pc.cast(column, utc, safe=False).cast(pa.int64()), np.int64)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return epoch_to_ms(numbers(column, np.float64 if pa.types.is_floating(kind) else np.int64))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text_to_ms(column, locate)
    raise DataError(path, 0, "time column has an unsupported type", str(kind), "numbers or text")


def epoch_to_ms(values: np.ndarray) -> I64:
    """Epoch numbers in s, ms, µs or ns (by magnitude) to integer ms."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    top = float(np.max(np.abs(values)))
    if top < 1e11:
        scaled = values * 1000
    elif top < 1e14:
        scaled = values
    elif top < 1e17:
        scaled = values / 1000 if values.dtype.kind == "f" else values // 1000
    else:
        scaled = values / 1_000_000 if values.dtype.kind == "f" else values // 1_000_000
    if scaled.dtype.kind == "f":
        return np.rint(scaled).astype(np.int64)
    return scaled.astype(np.int64)


def _text_to_ms(column: pa.Array, locate: Callable[[int], DataError]) -> I64:
    import pyarrow.compute as pc  # see times_to_ms

    for fmt in _STRPTIME_FORMATS:
        try:
            stamped = pc.strptime(column, format=fmt, unit="ms")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return numbers(stamped.cast(pa.int64()), np.int64)
    out = np.empty(len(column), dtype=np.int64)  # slow path: Python's ISO parser, row by row
    for i, text in enumerate(column.to_pylist()):
        out[i] = parse_time_ms(str(text), locate, i)
    return out


def parse_time_ms(text: str, locate: Callable[[int], DataError], index: int) -> int:
    """One time value (epoch number or ISO text; naive means UTC) to ms."""
    value = text.strip().strip("\"'")
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return int(epoch_to_ms(np.array([number]))[0])
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise locate(index) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return (stamp - _EPOCH) // dt.timedelta(milliseconds=1)
