"""Errors raised while reading candles: one type that names the file, the row and the problem."""

from __future__ import annotations

_SHOW = 120


class DataError(ValueError):
    """A candle file that cannot be used as it is.

    ``row`` is the 1-based data row (the header is not counted); ``line`` is the
    1-based line in a text file when it is known (CSV), else 0. ``item`` says what
    a row is called in the message ("row", "result.list item", ...).
    """

    def __init__(
        self,
        path: str,
        row: int,
        what: str,
        found: str = "",
        expected: str = "",
        *,
        line: int = 0,
        item: str = "row",
    ) -> None:
        if len(found) > _SHOW:  # a hostile file can hold a field of megabytes
            found = found[: _SHOW - 3] + "..."
        self.path, self.row, self.what = str(path), row, what
        self.found, self.expected, self.line, self.item = found, expected, line, item
        super().__init__(self._message())

    def _message(self) -> str:
        where = self.path
        if self.line:
            where += f": line {self.line} (data row {self.row})"
        elif self.row:
            where += f": {self.item} {self.row}"
        text = f"{where}: {self.what}"
        if self.found:
            text += f"; found {self.found}"
        if self.expected:
            text += f"; expected {self.expected}"
        return text


class FetchError(RuntimeError):
    """A download from the venue failed (bad symbol, bad range, HTTP or API error)."""
