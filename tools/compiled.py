"""Opt-in compiled modules: with ``REPLAY_COMPILED=1`` the mypyc build in ``.compiled/``
(``make compiled``) replaces the modules it lists, but only while the sha256 of every
source file it was built from still matches; otherwise pure Python and one warning.

Each top-level package's ``__init__`` imports this module first, which installs the hook;
without the variable it does nothing, so the default is always pure Python. A partial
match is no match: compiled modules call each other natively and inline other modules'
constants, so one edited file anywhere in the packages disables the whole build rather
than mixing old and new code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

ENV: Final = "REPLAY_COMPILED"
DIR_ENV: Final = "REPLAY_COMPILED_DIR"  # another build directory (tests build in a temp dir)
ROOT: Final = Path(__file__).resolve().parent.parent
BUILD_DIR: Final = ROOT / ".compiled"
MANIFEST: Final = "manifest.json"
#: The packages whose every .py is hashed into the manifest (what mypyc read to build).
PACKAGES: Final = ("engine", "eventstore", "projections", "adapters", "replay")

_active: bool | None = None  # decided once per process (the warning too)


def source_hashes(root: Path = ROOT) -> dict[str, str]:
    """sha256 of every .py file of ``PACKAGES`` under ``root``, by relative path."""
    import hashlib  # here, not at the top: a pure run (the default) imports nothing more

    out: dict[str, str] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def stale_sources(manifest: dict[str, Any], root: Path = ROOT) -> list[str]:
    """Source files added, removed or changed since the build (sorted)."""
    built: dict[str, str] = manifest.get("sources", {})
    now = source_hashes(root)
    return sorted(p for p in built.keys() | now.keys() if built.get(p) != now.get(p))


class _CompiledFinder:
    """A meta path finder that maps the built module names to their extension files."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        import importlib.util

        so = self.files.get(name)
        return None if so is None else importlib.util.spec_from_file_location(name, so)


def _warn(why: str) -> None:
    sys.stderr.write(f"replay: {ENV}=1 but {why}; running pure Python\n")


def install() -> bool:
    """Use the build's extension modules if ``REPLAY_COMPILED=1`` and it is current."""
    global _active
    if _active is None:
        wanted = os.environ.get(ENV, "")
        if wanted == "1":
            _active = _install(Path(os.environ.get(DIR_ENV) or BUILD_DIR))
        elif wanted not in ("", "0"):  # "yes", "true": say so rather than run pure silently
            sys.stderr.write(f"replay: {ENV}={wanted!r} is not 1 or 0; running pure Python\n")
            _active = False
    return bool(_active)


def _install(build: Path) -> bool:
    import json

    try:
        manifest = json.loads((build / MANIFEST).read_text())
    except (OSError, ValueError):
        _warn(f"there is no build in {build} (make compiled)")
        return False
    if manifest.get("cache_tag") != sys.implementation.cache_tag:
        _warn(f"the build in {build} is for {manifest.get('cache_tag')} (make compiled)")
        return False
    stale = stale_sources(manifest)
    if stale:
        more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
        _warn(f"sources changed since the build: {', '.join(stale[:3])}{more} (make compiled)")
        return False
    files = {name: build / rel for name, rel in manifest["extensions"].items()}
    sys.meta_path.insert(0, _CompiledFinder(files))
    return True


install()
