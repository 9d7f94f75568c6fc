"""A whole ``CandleSeries`` encoded to the log's ``CandleClosed`` bytes at once, in numpy.

``encode_candles(series)`` gives, for every row, exactly the bytes
``engine.events.encode(CandleClosed(...))`` gives for the event ``series.events()``
yields for that row (a msgpack array: tag, ts, symbol, timeframe, open_ms, close_ms,
open, high, low, close, volume, turnover, backfill), without building one Python
object per candle. Integers take msgpack's shortest form, as msgspec writes them.
``tests/test_fast_backtest.py`` holds the two equal on real and random data: that
equality is this module's contract.
"""

from __future__ import annotations

import sys
from itertools import pairwise
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from engine.events import CandleClosed

from .series import COLUMNS, CandleSeries

I64 = npt.NDArray[np.int64]
_U8: Final = np.uint8

# (lowest, highest, header byte or -1 for a one-byte fixint, payload bytes)
_UINT: Final = (
    (0, 127, -1, 0),
    (128, 255, 0xCC, 1),
    (256, 65_535, 0xCD, 2),
    (65_536, 2**32 - 1, 0xCE, 4),
    (2**32, 2**63 - 1, 0xCF, 8),
)
_SINT: Final = (
    (-32, -1, -1, 0),
    (-128, -33, 0xD0, 1),
    (-32_768, -129, 0xD1, 2),
    (-(2**31), -32_769, 0xD2, 4),
    (-(2**63), -(2**31) - 1, 0xD3, 8),
)


_CHUNK: Final = 65_536  # rows encoded per numpy pass (bounds the scratch memory)


# Class of an integer: 0-4 non-negative (by _UINT), 5-9 negative (by _SINT).
_POS_BINS: Final = np.array([hi + 1 for _, hi, _, _ in _UINT[:-1]], np.int64)
_NEG_BINS: Final = np.array([lo for lo, _, _, _ in reversed(_SINT[:-1])], np.int64)
_HEAD: Final = np.array([max(h, 0) for _, _, h, _ in (*_UINT, *_SINT)], _U8)
_SIZE: Final = np.array([k for _, _, _, k in (*_UINT, *_SINT)], np.int64)
_FIX: Final = np.array([h < 0 for _, _, h, _ in (*_UINT, *_SINT)], np.bool_)


def _class(v: int) -> int:
    if v >= 0:
        return int(np.searchsorted(_POS_BINS, v, "right"))
    return 9 - int(np.searchsorted(_NEG_BINS, v, "right"))


def _width(col: I64) -> int | None:
    """The class of every integer of ``col`` when they share one (None if mixed): the
    width is monotonic within a sign, so the extremes decide."""
    lo, hi = _class(int(col.min())), _class(int(col.max()))
    return lo if lo == hi else None


def _fixed_into(out: npt.NDArray[np.uint8], at: int, col: I64, cls: int) -> int:
    """Write ``col`` (all of class ``cls``) into columns ``at``.. of ``out``; the next one."""
    size = int(_SIZE[cls])
    be = col.astype(">i8").view(_U8).reshape(len(col), 8)
    if _FIX[cls]:  # a fixint is its own low byte
        out[:, at] = be[:, 7]
        return at + 1
    out[:, at] = _HEAD[cls]
    out[:, at + 1 : at + 1 + size] = be[:, 8 - size :]
    return at + 1 + size


def _int_slot(col: I64) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """Each integer of a mixed-width column as a 9-byte slot (header + 8 big-endian
    bytes) and which bytes to keep."""
    n = len(col)
    slot = np.empty((n, 9), _U8)
    slot[:, 1:] = col.astype(">i8").view(_U8).reshape(n, 8)
    pos = np.searchsorted(_POS_BINS, col, "right")
    neg = 9 - np.searchsorted(_NEG_BINS, col, "right")
    cls = np.where(col >= 0, pos, neg)
    fix = _FIX[cls]
    slot[:, 0] = np.where(fix, slot[:, 8], _HEAD[cls])  # a fixint is its own low byte
    keep = np.empty((n, 9), np.bool_)
    keep[:, 0] = True
    keep[:, 1:] = np.arange(8)[None, :] >= (8 - _SIZE[cls])[:, None]
    return slot, keep


def _encode_rows(
    parts: list[bytes | I64], n: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    widths = [None if isinstance(p, bytes) else _width(p) for p in parts]
    if all(w is not None for p, w in zip(parts, widths) if not isinstance(p, bytes)):
        # every row the same length: one block, each part written into its columns
        width = sum(
            len(p) if isinstance(p, bytes) else 1 + int(_SIZE[w]) for p, w in zip(parts, widths)
        )
        out = np.empty((n, width), _U8)
        at = 0
        for p, w in zip(parts, widths):
            if isinstance(p, bytes):
                out[:, at : at + len(p)] = np.frombuffer(p, _U8)
                at += len(p)
            else:
                assert w is not None
                at = _fixed_into(out, at, p, w)
        return out.reshape(-1), np.full(n, out.shape[1], np.int64)
    slots: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_] | None]] = []
    for p, w in zip(parts, widths):
        if isinstance(p, bytes):
            if p:
                slots.append((np.broadcast_to(np.frombuffer(p, _U8), (n, len(p))), None))
        elif w is not None:
            block = np.empty((n, 1 + int(_SIZE[w])), _U8)
            _fixed_into(block, 0, p, w)
            slots.append((block, None))
        else:
            slots.append(_int_slot(p))
    data = np.concatenate([s for s, _ in slots], axis=1)
    keep = np.concatenate(
        [np.ones(s.shape, np.bool_) if k is None else k for s, k in slots], axis=1
    )
    return data[keep], keep.sum(axis=1)


class EncodedCandles:
    """The candle bytes of a series, encoded a chunk of rows at a time as they are asked
    for (in any order, but the fast path asks in order: one chunk is kept)."""

    __slots__ = ("_chunk", "_data", "_lo", "_parts", "_series", "_starts")

    def __init__(self, series: CandleSeries, backfill: bool) -> None:
        enc = msgspec.msgpack.encode
        # The array header and the tag: what every CandleClosed's encoding starts with.
        probe = enc(
            CandleClosed(0, series.symbol, series.timeframe, 0, 0, 0, 0, 0, 0, 0, 0, backfill)
        )
        tag = enc(CandleClosed.__struct_config__.tag)
        prefix = probe[: probe.index(tag) + len(tag)]
        self._parts = (prefix, enc(series.symbol) + enc(series.timeframe), enc(backfill))
        self._series = series
        self._chunk = -1
        self._lo = 0
        self._data = b""
        self._starts: list[int] = [0]

    def __len__(self) -> int:
        return len(self._series)

    def _load(self, chunk: int) -> None:
        prefix, middle, suffix = self._parts
        lo = chunk * _CHUNK
        part = {name: col[lo : lo + _CHUNK] for name, col in self._series.columns().items()}
        rows: list[bytes | I64] = [prefix, part["close_ms"], middle, part["open_ms"]]
        rows += [part[name] for name in COLUMNS[1:]]
        rows.append(suffix)
        data, length = _encode_rows(rows, len(part["open_ms"]))
        starts = np.zeros(len(length) + 1, np.int64)
        np.cumsum(length, out=starts[1:])
        self._data = data.tobytes()
        self._starts = starts.tolist()
        self._chunk, self._lo = chunk, lo

    def rows(self, lo: int, hi: int) -> list[bytes]:
        """The bytes of rows ``lo`` .. ``hi - 1``."""
        out: list[bytes] = []
        while lo < hi:
            if lo // _CHUNK != self._chunk:
                self._load(lo // _CHUNK)
            base = self._lo
            end = min(hi, base + _CHUNK)
            out += self._slice(lo - base, end - base)
            lo = end
        return out

    def _slice(self, a: int, b: int) -> list[bytes]:
        """The bytes of rows ``a`` .. ``b - 1`` of the loaded chunk."""
        data = self._data
        return [data[x:y] for x, y in pairwise(self._starts[a : b + 1])]

    def row(self, i: int) -> bytes:
        """The bytes of row ``i``."""
        if i // _CHUNK != self._chunk:
            self._load(i // _CHUNK)
        k = i - self._lo
        return self._data[self._starts[k] : self._starts[k + 1]]


def encode_candles(series: CandleSeries, *, backfill: bool = False) -> EncodedCandles:
    """The log bytes of every candle of ``series`` (see the module doc), encoded lazily."""
    return EncodedCandles(series, backfill)


KEEP_BYTES: Final = 16 << 20  # candle bytes a KeptEncodedCandles keeps (about 120k rows)
_ROW_COST: Final = sys.getsizeof(b"") + 7 + 8  # a kept row's object header, rounding, pointer


class KeptEncodedCandles(EncodedCandles):
    """``EncodedCandles`` that keeps the chunks it encoded, up to ``budget`` bytes, as one
    ``bytes`` per row (later chunks are encoded again each time): many runs over one
    series (a sweep's trials) encode the kept chunks once and take their rows as list
    slices, not one new ``bytes`` per row and run. The budget bounds a sweep worker's
    memory (1M candles are about 93 MB of bytes)."""

    __slots__ = ("_budget", "_kept", "_rows")

    def __init__(self, series: CandleSeries, backfill: bool = False, budget: int = KEEP_BYTES):
        super().__init__(series, backfill)
        self._kept: dict[int, list[bytes]] = {}
        self._rows: list[bytes] | None = None  # the loaded chunk's rows, when it is kept
        self._budget = budget

    def _load(self, chunk: int) -> None:
        got = self._kept.get(chunk)
        if got is None:
            super()._load(chunk)
            self._rows = None
            n = len(self._starts) - 1
            size = len(self._data) + n * _ROW_COST
            if size <= self._budget:
                self._rows = self._kept[chunk] = super()._slice(0, n)
                self._data, self._starts = b"", [0]
                self._budget -= size
            return
        self._rows = got
        self._chunk, self._lo = chunk, chunk * _CHUNK

    def _slice(self, a: int, b: int) -> list[bytes]:
        rows = self._rows
        return super()._slice(a, b) if rows is None else rows[a:b]

    def row(self, i: int) -> bytes:
        if i // _CHUNK != self._chunk:
            self._load(i // _CHUNK)
        rows = self._rows
        return super().row(i) if rows is None else rows[i - self._lo]
