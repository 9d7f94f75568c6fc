"""``replay sessions``: list a store's sessions, and delete them (``rm``, ``prune``).

A session is a stream whose kind is a session mode; its *side streams* are the
streams named ``<session>.<something>`` of another kind (the daemon's
``<session>.snapshots``, a venue's raw bytes). Deleting a session deletes the
stream, its side streams and its report folder. A session whose writer lock is
held (a running backtest or daemon) is never deleted: ``EventStore.delete_stream``
refuses it, and ``plan`` reports it as running. The status column is
``replay.statuses.session_status`` (a dead writer shows as ``crashed``), or
``TAMPERED`` when the stream fails its hash chain (``eventstore.checked``). Sweep
streams (kind ``sweep``) are not sessions: ``replay sweeps`` lists and deletes them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import msgspec

from eventstore import EventStore, LogCorruptError, StreamInfo, StreamNotFound, WriterLocked
from eventstore.checked import check_stream
from eventstore.lock import WriterLock
from replay.errors import InputError
from replay.statuses import session_status

SESSION_KINDS = frozenset({"backtest", "demo", "live"})
REPORT_FILES = ("summary.json", "trades.csv", "equity.csv", "report.html")
COLUMNS = ("id", "mode", "card", "period", "trades", "return", "status")


class SessionRow(msgspec.Struct):
    id: str
    mode: str
    card: str
    start: str
    end: str
    trades: int | None
    total_return: float | None
    status: str
    events: int
    fingerprint: str
    created_ms: int
    params: str = ""
    problem: str = ""  # why the hash chain failed, when status is TAMPERED

    def as_json(self) -> dict[str, Any]:
        """The row for ``--json`` (``session`` kept as an alias of ``id`` for scripts)."""
        period = f"{self.start or '?'} → {self.end or '?'}"
        return {"session": self.id, **msgspec.to_builtins(self), "period": period}

    def cells(self) -> tuple[str, ...]:
        period = f"{self.start[:10]} → {self.end[:10]}" if self.start else "-"
        trades = "-" if self.trades is None else f"{self.trades:,}"
        ret = "-" if self.total_return is None else f"{self.total_return:+.2%}"
        cells = (self.id, self.mode, self.card, period, trades, ret, self.status)
        return tuple(_cell(c) for c in cells)


def _cell(text: str) -> str:
    """A table cell: control characters escaped, rich markup taken literally."""
    from rich.markup import escape

    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or 0xD800 <= ord(ch) < 0xE000 for ch in text):
        text = ascii(text)
    return escape(text)


def side_streams(infos: list[StreamInfo], session: str) -> list[str]:
    """The names of ``session``'s side streams among ``infos``."""
    prefix = f"{session}."
    return [i.name for i in infos if i.name.startswith(prefix) and i.kind not in SESSION_KINDS]


def _summary(store_dir: Path, info: StreamInfo) -> dict[str, Any]:
    folder = report_folder(store_dir, info)
    try:
        data = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def report_folder(store_dir: Path, info: StreamInfo) -> Path:
    """Where the session's report is: recorded in its metadata, else the default folder."""
    recorded = info.meta.get("report_dir")
    return Path(recorded) if recorded else store_dir / "reports" / info.name


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def rows(store: EventStore, store_dir: Path) -> list[SessionRow]:
    """Every session of the store, oldest first, with trades and return where known."""
    out = []
    for info in store.streams():
        if info.kind not in SESSION_KINDS:
            continue
        meta = info.meta
        summary = _summary(store_dir, info)
        card = meta.get("card_name") or Path(meta.get("card", "")).stem or "-"
        problem = ""
        try:
            check_stream(store, info.name)
        except LogCorruptError as exc:
            problem = str(exc)
        out.append(
            SessionRow(
                id=info.name,
                mode=info.kind,
                card=card,
                start=meta.get("start", ""),
                end=meta.get("end", ""),
                trades=_int(summary.get("trades")),
                total_return=_float(summary.get("total_return")),
                status="TAMPERED" if problem else session_status(store.stream(info.name)),
                events=info.last_seq,
                fingerprint=info.fingerprint,
                created_ms=info.created_ms,
                params=meta.get("params", ""),
                problem=problem,
            )
        )
    return out


def is_running(store: EventStore, name: str) -> bool:
    """True while some process holds the stream's writer lock."""
    try:
        lock = WriterLock(store.stream(name).lock_path, name)
    except WriterLocked:
        return True
    lock.release()
    return False


class Removal(msgspec.Struct):
    session: str
    streams: list[str]
    report: str | None
    records: int = 0


def plan(store: EventStore, store_dir: Path, ids: list[str]) -> list[Removal]:
    """What deleting ``ids`` removes; StreamNotFound for an unknown or non-session id."""
    infos = store.streams()
    by_name = {i.name: i for i in infos}
    out = []
    for sid in ids:
        info = by_name.get(sid)
        if info is not None and info.kind == "sweep":  # replay.sweep.events.KIND
            raise InputError(
                f"{sid} is a sweep, not a session; delete it with replay sweeps rm {sid}"
            )
        if info is None or info.kind not in SESSION_KINDS:
            raise StreamNotFound(sid, str(store_dir))
        folder = report_folder(store_dir, info)
        out.append(
            Removal(sid, [sid, *side_streams(infos, sid)], str(folder) if folder.exists() else None)
        )
    return out


def prune_plan(store: EventStore, store_dir: Path, keep: int) -> tuple[list[Removal], list[str]]:
    """Sessions beyond the ``keep`` newest (by creation order), and the running ones spared."""
    listed = rows(store, store_dir)[::-1]  # streams are listed in creation order
    old = [r.id for r in listed[keep:]]
    running = [sid for sid in old if is_running(store, sid)]
    return plan(store, store_dir, [s for s in old if s not in running]), running


def remove(store: EventStore, store_dir: Path, removal: Removal) -> Removal:
    """Delete the session first (refused while running), then its side streams and report."""
    records = 0
    for name in removal.streams:
        if name in store:
            records += store.delete_stream(name)
    if removal.report is not None:
        _remove_report(store_dir, Path(removal.report))
    return msgspec.structs.replace(removal, records=records)


def _remove_report(store_dir: Path, folder: Path) -> None:
    """The default folder goes whole; a folder the user chose loses only the report files."""
    if folder.resolve().parent == (store_dir / "reports").resolve():
        shutil.rmtree(folder, ignore_errors=True)
        return
    for name in REPORT_FILES:
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the user's other files stay
        folder.rmdir()
