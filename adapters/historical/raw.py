"""``RawCandles``: what a file reader hands the loader, before checks and unit conversion."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .errors import DataError

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class RawCandles:
    """Bar timestamps (ms, as stamped in the file) and float columns in the file's units.

    ``rows`` maps an index to the 1-based data row it came from (None: index + 1);
    ``header_lines`` turns a data row into a file line for text formats (None: the
    format has no lines); ``item`` names a row in messages ("row", "result.list item").
    """

    __slots__ = (
        "close",
        "found",
        "header_lines",
        "high",
        "item",
        "low",
        "open",
        "path",
        "rows",
        "stamp",
        "turnover",
        "volume",
    )

    def __init__(
        self,
        path: str,
        stamp: I64,
        open: F64,
        high: F64,
        low: F64,
        close: F64,
        volume: F64,
        turnover: F64 | None = None,
        *,
        rows: I64 | None = None,
        header_lines: int | None = None,
        item: str = "row",
        found: str = "",
    ) -> None:
        self.path, self.stamp = path, stamp
        self.open, self.high, self.low, self.close = open, high, low, close
        self.volume, self.turnover = volume, turnover
        self.rows, self.header_lines, self.item = rows, header_lines, item
        self.found = found  # what the column sniffing found, for the user

    def __len__(self) -> int:
        return len(self.stamp)

    def row(self, index: int) -> int:
        """The 1-based data row of ``index`` in the file."""
        return int(self.rows[index]) if self.rows is not None else index + 1

    def error(self, index: int, what: str, found: str = "", expected: str = "") -> DataError:
        """A DataError located at ``index`` (file, data row, and line when known)."""
        row = self.row(index)
        line = 0 if self.header_lines is None else row + self.header_lines
        return DataError(self.path, row, what, found, expected, line=line, item=self.item)

    def take(self, index: slice | I64) -> RawCandles:
        """The selected rows (keeps their original row numbers)."""
        rows = self.rows[index] if self.rows is not None else np.arange(len(self))[index] + 1
        return RawCandles(
            self.path,
            self.stamp[index],
            self.open[index],
            self.high[index],
            self.low[index],
            self.close[index],
            self.volume[index],
            None if self.turnover is None else self.turnover[index],
            rows=np.asarray(rows, dtype=np.int64),
            header_lines=self.header_lines,
            item=self.item,
            found=self.found,
        )
