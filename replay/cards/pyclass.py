"""Importing a card's Python strategy class (``strategy: {class: "package.module.Class"}``).

The module is looked up on ``sys.path`` with the card file's directory, its parent and
the project checkout (for the bundled ideacards) put in front for the duration of the
import, so a card next to ``detector_driven.py`` can say ``detector_driven.DetectorDriven``
and one in ``ideacards/`` can say ``ideacards.detector_driven.DetectorDriven``. A wrong
module or class name fails here, at load, with the closest sibling name (pkgutil +
difflib) as the suggestion.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.strategy import describe_failure

_REQUIRED = ("on_bar", "snapshot", "restore")


class ClassPathError(ValueError):
    """The class path is wrong; carries found / expected / suggestion for IdeaCardError."""

    def __init__(self, message: str, found: str, expected: str, suggestion: str = "") -> None:
        super().__init__(message)
        self.found = found
        self.expected = expected
        self.suggestion = suggestion


#: The checkout holding ``ideacards/``: the bundled examples import from anywhere, even
#: when a card is rebuilt from a log whose source is not a path (``replay verify``).
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def _search_path(card_dir: Path | None) -> Iterator[list[str]]:
    extra = [] if card_dir is None else [str(card_dir), str(card_dir.parent)]
    extra.append(str(_PROJECT_ROOT))
    added = [p for p in extra if p not in sys.path]
    sys.path[:0] = added
    try:
        yield [*extra, *sys.path]
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)


def _siblings(parent: ModuleType | None, search: list[str]) -> list[str]:
    if parent is None:
        return [m.name for m in pkgutil.iter_modules(search)]
    paths = getattr(parent, "__path__", None)
    return [] if paths is None else [m.name for m in pkgutil.iter_modules(list(paths))]


def _import_failure(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    return describe_failure(exc)


def load_class(path: str, card_dir: Path | None) -> type[Any]:
    """Import ``package.module.Class``; ClassPathError with a suggestion if it is wrong."""
    parts = path.strip().split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise ClassPathError(
            f"strategy class {path!r} is not a dotted path", path, "'package.module.Class'"
        )
    mod_parts, cls_name = parts[:-1], parts[-1]
    with _search_path(card_dir) as search:
        parent: ModuleType | None = None
        for i, name in enumerate(mod_parts):
            full = ".".join(mod_parts[: i + 1])
            try:
                parent = importlib.import_module(full)
            except ModuleNotFoundError as exc:
                if exc.name != full:
                    raise ClassPathError(
                        f"importing {full!r} failed: {exc}", path, "a module whose imports work"
                    ) from None
                sib = _siblings(parent, search)
                close = difflib.get_close_matches(name, sib, n=1, cutoff=0.6)
                prefix = ".".join(mod_parts[:i])
                sugg = ""
                if close:
                    sugg = ".".join([*([prefix] if prefix else []), close[0], *parts[i + 1 :]])
                where = f"in package {prefix!r}" if prefix else "on the import path"
                raise ClassPathError(
                    f"no module named {full!r} {where}", full, f"an importable module {where}", sugg
                ) from None
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # the user's module: SyntaxError, a raise, sys.exit
                raise ClassPathError(
                    f"importing {full!r} failed: {_import_failure(exc)}",
                    full,
                    "a module that imports without errors",
                ) from None
    assert parent is not None
    cls = getattr(parent, cls_name, None)
    if not isinstance(cls, type):
        names = [
            n for n, v in vars(parent).items() if isinstance(v, type) and not n.startswith("_")
        ]
        close = difflib.get_close_matches(cls_name, names, n=1, cutoff=0.6)
        raise ClassPathError(
            f"module {parent.__name__!r} has no class {cls_name!r}",
            cls_name,
            "a class in " + parent.__name__ + (f" ({', '.join(names)})" if names else ""),
            f"{parent.__name__}.{close[0]}" if close else "",
        )
    missing = [m for m in _REQUIRED if not callable(getattr(cls, m, None))]
    if missing:
        raise ClassPathError(
            f"class {path!r} lacks {', '.join(missing)} of the strategy interface",
            path,
            "a class with on_bar(bar, ctx), snapshot() and restore(state)",
        )
    return cls
