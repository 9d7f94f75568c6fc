"""The indicator package stays pure: stdlib (no I/O, clock or randomness), numpy, msgspec."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "engine" / "indicators"
ALLOWED_ROOTS = {"__future__", "collections", "difflib", "math", "typing", "msgspec", "numpy"}
FORBIDDEN_CALLS = {"open", "print", "input", "eval", "exec"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_imports_only_pure_modules(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]]
            if roots == ["engine"]:
                assert (node.module or "").startswith("engine.indicators"), (
                    f"{path.name}:{node.lineno} imports {node.module}"
                )
                continue
        else:
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in FORBIDDEN_CALLS
            ):
                raise AssertionError(f"{path.name}:{node.lineno} calls {node.func.id}()")
            continue
        for root in roots:
            assert root in ALLOWED_ROOTS, f"{path.name}:{node.lineno} imports {root}"


def test_the_package_is_found() -> None:
    assert len(_modules()) >= 8
