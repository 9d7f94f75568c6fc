"""The store's cache of Bybit's instruments-info (``replay data instruments`` writes it).

One JSON file, ``<store>/instruments/bybit-linear.json``: when it was fetched (UTC ms
and date), from where, and one spec per symbol in the engine's field names. Backtests
of a symbol it lists use its filters (``replay.instruments.resolve``: below
``--instrument`` and the card's ``instrument:``, above the built-in table). A cache
older than ``MAX_AGE_DAYS`` is still used, with a warning: filters change rarely, and
the spec a session used is logged in its ``SessionStarted`` anyway, so ``verify`` and
``report`` never read this file.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec

from engine.events import InstrumentSpec
from replay.errors import InputError

CACHE_FILE: Final = Path("instruments") / "bybit-linear.json"
MAX_AGE_DAYS: Final = 7
_DAY_MS: Final = 86_400_000


class _File(msgspec.Struct, frozen=True):
    fetched_ms: int
    fetched: str  # the UTC date, for a human reading the file
    source: str
    instruments: dict[str, dict[str, str | int]]  # symbol -> InstrumentSpec's other fields


class InstrumentCache(msgspec.Struct, frozen=True):
    """The cached specs and where and when they came from."""

    path: str
    fetched_ms: int
    source: str
    specs: dict[str, InstrumentSpec]

    @property
    def date(self) -> str:
        return dt.datetime.fromtimestamp(self.fetched_ms / 1000, dt.UTC).strftime("%Y-%m-%d")

    def age_days(self, now_ms: int | None = None) -> float:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        return max(0, now - self.fetched_ms) / _DAY_MS

    def stale(self, now_ms: int | None = None) -> bool:
        return self.age_days(now_ms) > MAX_AGE_DAYS

    def staleness(self, now_ms: int | None = None) -> str:
        """A warning when the cache is older than ``MAX_AGE_DAYS``, else ""."""
        if not self.stale(now_ms):
            return ""
        return (
            f"warning: the instruments cache {self.path} is {self.age_days(now_ms):.0f} days old"
            f" (fetched {self.date}, older than {MAX_AGE_DAYS} days); it is used, but run"
            " `replay data instruments` to refresh it"
        )


def cache_path(store: Path) -> Path:
    return store / CACHE_FILE


def _spec(symbol: str, row: dict[str, str | int]) -> InstrumentSpec:
    """A cached row as a spec, its field types checked; fields a row lacks (written before
    they existed: trailing ones) take their defaults."""
    values = {**row, "symbol": symbol}
    fields = InstrumentSpec.__struct_fields__
    present = [values[f] for f in fields[: max(i + 1 for i, f in enumerate(fields) if f in values)]]
    return msgspec.convert(present, InstrumentSpec)


def load_cache(store: Path | None) -> InstrumentCache | None:
    """The store's cache, None when there is none; an unreadable file is an InputError."""
    if store is None:
        return None
    path = cache_path(store)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"instruments cache {path}: cannot read it ({exc.strerror})") from None
    try:
        data = msgspec.json.decode(raw, type=_File)
        specs = {sym: _spec(sym, row) for sym, row in data.instruments.items()}
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError, KeyError, ValueError) as exc:
        raise InputError(
            f"instruments cache {path} is damaged ({exc}); run `replay data instruments` again"
        ) from None
    return InstrumentCache(str(path), data.fetched_ms, data.source, specs)


def save_cache(
    store: Path, specs: list[InstrumentSpec], source: str, fetched_ms: int | None = None
) -> InstrumentCache:
    """Write the cache atomically (a reader never sees half a file); returns it."""
    now = time.time_ns() // 1_000_000 if fetched_ms is None else fetched_ms
    rows = {
        s.symbol: {k: v for k, v in msgspec.structs.asdict(s).items() if k != "symbol"}
        for s in specs
    }
    date = dt.datetime.fromtimestamp(now / 1000, dt.UTC).strftime("%Y-%m-%d")
    body = msgspec.json.format(msgspec.json.encode(_File(now, date, source, rows)), indent=1)
    path = cache_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body + b"\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return InstrumentCache(str(path), now, source, {s.symbol: s for s in specs})
