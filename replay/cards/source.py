"""A Python strategy's source in its session log, and running it from there.

``strategy_fields(card)`` is what a new session logs in ``SessionStarted`` for a card
with ``strategy: {class: ...}``: the source of the class's module, of its parent
packages and of every module it imports (transitively) from the card's directory or
the module's own directory (``strategy_source``: import path such as
``mystrats/trend.py`` -> text), the directory they were imported from
(``strategy_root``) and a sha256 over all of it (``strategy_hash``). Standard-library
and installed packages are not logged (they are not the card's code).

``logged_strategy(started)`` wraps the rebuilding of such a session's card (``replay
verify``, ``inspect --at``): the strategy is imported from the logged source, not from
whatever is on ``sys.path`` here, so it works from any directory without PYTHONPATH.
Running code that came from a log is running someone's code, so that happens only when
every logged file matches a file on disk (searched under ``strategy_root``, the
project, the working directory and ``sys.path``) or when the caller trusts the log
(``trusting(True)``: ``--trust-logged-code``); otherwise an ``InputError`` (exit 2)
says which file differs or is missing and how to allow it. ``judge`` gives the note
("the file on disk differs ...") a command prints when it runs the logged code anyway.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.abc
import importlib.util
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import msgspec

from engine.events import SessionStarted
from replay.errors import InputError

_PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
_TRUSTED: ContextVar[bool] = ContextVar("trust_logged_code", default=False)
FLAG: Final = "--trust-logged-code"


# ---------------------------------------------------------------- recording


def _installed_dirs() -> list[Path]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return [Path(p).resolve() for p in paths if p]


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def _key(module: ModuleType) -> str | None:
    """``a/b/c.py`` or ``a/b/__init__.py`` for a module loaded from a .py file."""
    file = getattr(module, "__file__", None)
    if not file or not file.endswith(".py"):
        return None
    parts = module.__name__.split(".")
    is_pkg = hasattr(module, "__path__")
    return "/".join(parts) + ("/__init__.py" if is_pkg else ".py")


def _imported_names(tree: ast.AST, module: ModuleType) -> list[str]:
    """Module names an AST imports, absolute (relative imports resolved against it)."""
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - node.level + 1] if node.level > 1 else up
                base = ".".join([*up, *([base] if base else [])])
            if base:
                names.append(base)
                names += [f"{base}.{a.name}" for a in node.names]
    return names


def capture(cls: type[Any], card_dir: Path | None) -> tuple[dict[str, str], str]:
    """(import path -> source, import root) of ``cls``'s module and the card's modules."""
    top = sys.modules[cls.__module__]
    top_file = Path(top.__file__ or "").resolve()
    folders = [top_file.parent, *([card_dir.resolve()] if card_dir else [])]
    installed = _installed_dirs()
    parts = top.__name__.split(".")
    parents = {".".join(parts[: i + 1]) for i in range(len(parts))}
    root = top_file.parents[len(parts) - (0 if hasattr(top, "__path__") else 1)]
    sources: dict[str, str] = {}
    todo = [".".join(parts[: i + 1]) for i in range(len(parts))]  # parents, then the module
    seen: set[str] = set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        mod = sys.modules.get(name)
        key = _key(mod) if mod is not None else None
        if mod is None or key is None:
            continue
        file = Path(mod.__file__ or "").resolve()
        if _inside(file, installed) or not (name in parents or _inside(file, folders)):
            continue
        text = file.read_text(encoding="utf-8")
        sources[key] = text
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        todo += _imported_names(tree, mod)
    return dict(sorted(sources.items())), str(root)


def source_hash(sources: Mapping[str, str]) -> str:
    return hashlib.sha256(msgspec.json.encode(dict(sorted(sources.items())))).hexdigest()


def strategy_fields(card: Any) -> dict[str, Any]:
    """``SessionStarted`` keyword arguments for ``card`` ({} without a Python strategy)."""
    cls = getattr(card, "strategy_class", None)
    if cls is None:
        return {}
    sources, root = capture(cls, getattr(card, "card_dir", None))
    if not sources:  # an installed package, not the card's code: nothing to log
        return {}
    return {
        "strategy_source": sources,
        "strategy_hash": source_hash(sources),
        "strategy_root": root,
    }


# ---------------------------------------------------------------- replaying


@contextlib.contextmanager
def trusting(trust: bool) -> Iterator[None]:
    """Within this block, logged strategy code may run even if no file on disk matches."""
    token = _TRUSTED.set(trust)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def _roots(started: SessionStarted) -> list[Path]:
    roots = [Path(started.strategy_root)] if started.strategy_root else []
    if started.card_path and not started.card_path.startswith("<"):
        card_dir = Path(started.card_path).resolve().parent
        roots += [card_dir, card_dir.parent]
    roots += [_PROJECT_ROOT, Path.cwd(), *(Path(p) for p in sys.path if p)]
    return list(dict.fromkeys(roots))


def compare(started: SessionStarted) -> tuple[list[str], list[str]]:
    """(logged files whose file on disk differs, logged files not found on disk)."""
    differ: list[str] = []
    missing: list[str] = []
    roots = _roots(started)
    for key, text in started.strategy_source.items():
        for root in roots:
            path = root / key
            try:
                on_disk = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if on_disk != text:
                differ.append(f"{key} (on disk: {path})")
            break
        else:
            missing.append(key)
    return differ, missing


def judge(started: SessionStarted) -> str:
    """ "" when the logged code matches the disk (or there is none); a note when it is
    trusted although it does not; an InputError (exit 2) otherwise."""
    if not started.strategy_source:
        return ""
    if source_hash(started.strategy_source) != started.strategy_hash:
        raise InputError(
            f"session {started.session_id}: the logged strategy source does not match its"
            " logged hash; the log was altered (see `replay verify`)"
        )
    differ, missing = compare(started)
    if not differ and not missing:
        return ""
    what = "; ".join(
        [*(f"{d} differs from the logged source" for d in differ)]
        + [f"{m} is not on disk here" for m in missing]
    )
    if _TRUSTED.get():
        return (
            f"note: session {started.session_id} runs its strategy from the source in its"
            f" log ({what}); {FLAG} was given"
        )
    raise InputError(
        f"session {started.session_id} runs Python strategy code ({what}). Running code"
        f" that came from a log runs someone's code: pass {FLAG} to run the logged source"
        " (it is in the session's SessionStarted.strategy_source), or restore the files"
    )


class _LoggedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the logged modules (and empty parent packages they lack) by name."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.modules: dict[str, tuple[str, str, bool]] = {}
        for key, text in sources.items():
            is_pkg = key.endswith("/__init__.py")
            name = key.removesuffix("/__init__.py").removesuffix(".py").replace("/", ".")
            self.modules[name] = (key, text, is_pkg)
        for name in list(self.modules):
            parts = name.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                self.modules.setdefault(parent, (f"{parent}/__init__.py", "", True))

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        entry = self.modules.get(fullname)
        if entry is None:
            return None
        key, _, is_pkg = entry
        return importlib.util.spec_from_loader(
            fullname, self, origin=f"<log>/{key}", is_package=is_pkg
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        key, text, is_pkg = self.modules[module.__name__]
        if is_pkg:
            module.__path__ = []
        exec(compile(text, f"<logged {key}>", "exec"), module.__dict__)  # the logged, judged source


@contextlib.contextmanager
def logged_strategy(started: SessionStarted) -> Iterator[str]:
    """Import the session's strategy from its log within this block (see the module
    docstring for when that is allowed); yields ``judge``'s note."""
    note = judge(started)
    if not started.strategy_source:
        yield note
        return
    finder = _LoggedModules(started.strategy_source)
    hidden = {n: sys.modules.pop(n) for n in list(finder.modules) if n in sys.modules}
    sys.meta_path.insert(0, finder)
    try:
        yield note
    finally:
        sys.meta_path.remove(finder)
        for name in finder.modules:
            sys.modules.pop(name, None)
        sys.modules.update(hidden)


def session_note(store: Any, session_id: str) -> str:
    """``judge`` of a stored session's ``SessionStarted`` (what a command says before it
    rebuilds the strategy); "" when the session cannot be read here (the command itself
    then reports why)."""
    from engine.events import decode

    try:
        first = next(iter(store.stream(session_id).read()), None)
        event = decode(first[1]) if first is not None else None
    except Exception:  # a missing or damaged session: the command itself says so
        return ""
    return judge(event) if isinstance(event, SessionStarted) else ""


def say(note: str) -> None:
    if note:
        print(note, file=sys.stderr)


def check_resume(started: SessionStarted, card: Any, session: str) -> None:
    """A daemon resuming ``started`` runs ``card``'s strategy from disk: refuse (exit 2)
    when that code is not the code the session logged, naming what changed."""
    if not started.strategy_hash:
        return
    now = strategy_fields(card)
    if now.get("strategy_hash") == started.strategy_hash:
        return
    logged, on_disk = set(started.strategy_source), set(now.get("strategy_source", {}))
    changed = sorted(
        k
        for k in logged | on_disk
        if started.strategy_source.get(k) != now.get("strategy_source", {}).get(k)
    )
    raise InputError(
        f"session {session} was started with other strategy code: {', '.join(changed)}"
        f" {'differs' if len(changed) == 1 else 'differ'} from the logged source; resume with"
        " the code it logged (SessionStarted.strategy_source), or start a new --session"
    )
