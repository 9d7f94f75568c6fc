"""``replay sweeps``: the sweep streams of a store, and deleting them with their trials."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from eventstore import EventStore, StreamNotFound
from replay.statuses import session_status
from replay.sweep.events import KIND, SweepStarted
from replay.sweep.runner import objective_value, read
from replay.sweep.view import fold, params_text


def rows(store: EventStore) -> list[dict[str, Any]]:
    out = []
    for info in store.streams():
        if info.kind != KIND:
            continue
        records = read(store, info.name)
        if not records or not isinstance(records[0], SweepStarted):
            continue
        view = fold(records)
        best = view.best
        out.append(
            {
                "id": info.name,
                "card": view.started.card_path,
                "search": view.started.search,
                "objective": view.started.objective,
                "done": len(view.trials),
                "planned": view.planned,
                "best_trial": best.number if best else None,
                "best_params": params_text(best) if best else "",
                "best_value": objective_value(view.started, best) if best else None,
                "status": session_status(store.stream(info.name)),
                "created_ms": info.created_ms,
            }
        )
    return out


def trial_streams(store: EventStore, sweep_id: str) -> list[str]:
    """Kept trial sessions of ``sweep_id`` (``SWEEP-tNNNN``, ``SWEEP-fK-tNNNN``)."""
    prefix = f"{sweep_id}-"
    out = []
    for info in store.streams():
        rest = info.name.removeprefix(prefix)
        if (
            info.name.startswith(prefix)
            and info.kind != KIND
            and (rest.startswith("t") or rest.startswith("f"))
        ):
            out.append(info.name)
    return out


def plan(store: EventStore, ids: list[str]) -> list[tuple[str, list[str]]]:
    out = []
    for sid in ids:
        if sid not in store or store.stream(sid).kind != KIND:
            raise StreamNotFound(sid, str(store.path))
        out.append((sid, [sid, *trial_streams(store, sid)]))
    return out


def remove(store: EventStore, store_dir: Path, sweep_id: str, names: list[str]) -> int:
    """Delete the sweep stream first (refused while a sweep writes it), then its trials."""
    records = 0
    for name in names:
        if name in store:
            records += store.delete_stream(name)
        shutil.rmtree(store_dir / "reports" / name, ignore_errors=True)
    shutil.rmtree(store_dir / "sweeps" / sweep_id, ignore_errors=True)
    return records
