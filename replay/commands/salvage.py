"""``replay store salvage SRC DST``: every intact, verifying session of a damaged store,
copied into a new one, and a list of what could not be saved.

``eventstore.salvage`` copies each stream whose records are whole and hash to their
fingerprint (read by child processes: a damaged page may kill its reader). Each copied
session (backtest, demo, live) must then pass ``replay verify`` in the new store, or it
is removed again and listed with the divergence; side streams (snapshots and the like)
are kept when their chain is intact. Exit 0 when everything was saved, 3 otherwise.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from eventstore import EventStore
from eventstore.salvage import Lost, Salvaged, salvage
from replay.verify import verify_session

SESSION_KINDS = frozenset({"backtest", "demo", "live"})


def salvage_store(src: Path, dst: Path) -> Salvaged:
    """Copy, then verify every copied session; the unverifiable ones are removed again."""
    result = salvage(src, dst)
    with EventStore(dst) as out:
        for name, kind in list(result.kinds.items()):
            if kind not in SESSION_KINDS:
                continue
            checked = verify_session(out, name)
            if checked.ok:
                continue
            d = checked.divergence
            why = f"does not verify at seq {d.seq}: {d.reason}" if d else "does not verify"
            out.delete_stream(name)
            del result.saved[name], result.kinds[name]
            result.lost.append(Lost(name, why, kind))
    return result


def lines(result: Salvaged) -> list[str]:
    out = [f"saved {name} ({n:,} events)" for name, n in result.saved.items()]
    out += [f"LOST  {x.name}: {x.reason}" for x in result.lost]
    out.append(f"{len(result.saved)} saved, {len(result.lost)} lost")
    return out


def as_json(result: Salvaged) -> dict[str, object]:
    return {
        "saved": dict(result.saved),
        "lost": [msgspec.to_builtins(x) for x in result.lost],
    }
