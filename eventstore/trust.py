"""Verify-then-trust: remember which state of the data file has been checked or written by us.

The full structural check costs seconds on a big store, so it runs only when the
file is not the one this code last left behind: ``trusted.json`` next to it holds
the data file's inode, size, mtime (ns) and a hash of its meta pages as of the last
full check or the last clean close of a writable handle. Any other change (a copy
from elsewhere, a crash of a writer, a commit by another process, bytes overwritten
at rest, a meta page damaged with the mtime put back) makes them differ and the next
open walks the whole file again. Not seen: a data page damaged in place with inode,
size and mtime restored and the meta pages untouched (bit rot); see
``eventstore.filecheck``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Final

from eventstore.filecheck import meta_digest

TRUST_FILE: Final = "trusted.json"


def stamp(path: Path) -> dict[str, int | str]:
    """What identifies the state of ``path``/data.mdb (raises OSError if unreadable)."""
    st = (path / "data.mdb").stat()
    return {
        "ino": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "meta": meta_digest(path),
    }


def is_trusted(path: Path) -> bool:
    """Whether ``path``/data.mdb is exactly as it was when last checked or closed by us."""
    try:
        saved = json.loads((path / TRUST_FILE).read_text())
        return bool(saved == stamp(path))
    except (OSError, ValueError):
        return False


def record(path: Path, checked: dict[str, int | str] | None = None) -> None:
    """Remember the data file's current state as trusted (best effort: read-only dirs skip).

    With ``checked`` (the stamp taken before a check), only if the file is still in it:
    a commit by another process during the check leaves the new state untrusted."""
    with contextlib.suppress(OSError):
        now = stamp(path)
        if checked is not None and checked != now:
            return
        tmp = path / f".{TRUST_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(now))
        os.replace(tmp, path / TRUST_FILE)
