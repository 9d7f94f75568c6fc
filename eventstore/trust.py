"""Verify-then-trust: remember which state of the data file has been checked or written by us.

The full structural check costs seconds on a big store, so it runs only when the
file is not the one this code last left behind: ``trusted.json`` next to it holds
the data file's inode, size and mtime (ns) as of the last full check or the last
clean close of a writable handle. Any other change (a copy from elsewhere, a crash
of a writer, bytes overwritten at rest) makes them differ and the next open walks
the whole file again.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Final

TRUST_FILE: Final = "trusted.json"


def _stamp(data: Path) -> dict[str, int]:
    st = data.stat()
    return {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_trusted(path: Path) -> bool:
    """Whether ``path``/data.mdb is exactly as it was when last checked or closed by us."""
    try:
        saved = json.loads((path / TRUST_FILE).read_text())
        return bool(saved == _stamp(path / "data.mdb"))
    except (OSError, ValueError):
        return False


def record(path: Path) -> None:
    """Remember the data file's current state as trusted (best effort: read-only dirs skip)."""
    with contextlib.suppress(OSError):
        tmp = path / f".{TRUST_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(_stamp(path / "data.mdb")))
        os.replace(tmp, path / TRUST_FILE)
