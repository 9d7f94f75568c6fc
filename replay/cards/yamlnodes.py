"""Reading card YAML while keeping its node tree, so any field path maps back to a line.

``read_yaml`` composes the document (``yaml.compose`` gives ``start_mark.line`` for
every node), refuses duplicate keys (plain YAML silently keeps the last one), and
constructs plain Python data from the same nodes. ``line_of`` walks a field path
(a pydantic ``loc`` tuple or a path string) down that tree.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from replay.cards.errors import IdeaCardError

_PATH_RE = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def read_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse ``text``: (data, root node); IdeaCardError with the line on bad YAML."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, None
            _check_shape(node, source)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise IdeaCardError(
            source,
            f"not valid YAML: {exc.problem or exc}",
            line=None if mark is None else mark.line + 1,
            found=None if mark is None else _line_text(text, mark.line),
            expected="well-formed YAML (check indentation, colons and quotes)",
        ) from None
    except yaml.YAMLError as exc:
        raise IdeaCardError(source, f"not valid YAML: {exc}", expected="well-formed YAML") from None
    except RecursionError:
        raise IdeaCardError(
            source,
            "nested too deeply to read",
            expected=f"at most {MAX_DEPTH} levels of nesting",
        ) from None
    return data, node


def _line_text(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line].strip() if 0 <= line < len(lines) else ""


#: A card is small: deeper nesting or more values (after expanding aliases) is hostile.
MAX_DEPTH = 64
MAX_VALUES = 100_000


def _check_shape(root: yaml.Node, source: str) -> None:
    """Refuse duplicate keys, recursive aliases, deep nesting and alias bombs.

    Each distinct node is walked once (a shared alias is not walked again), its expanded
    size and depth memoized, so the check is linear in the text, whatever the aliases.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    active: set[int] = set()

    def fail(node: yaml.Node, path: str, message: str, expected: str) -> IdeaCardError:
        return IdeaCardError(
            source, message, line=node.start_mark.line + 1, path=path, expected=expected
        )

    def visit(node: yaml.Node, path: str, level: int) -> None:
        key = id(node)
        if key in size:
            return
        if key in active:
            raise fail(
                node,
                path,
                "a recursive YAML alias (a value containing itself)",
                "aliases (*name) that refer to a finished value",
            )
        if level > MAX_DEPTH:
            raise fail(
                node,
                path,
                f"nested more than {MAX_DEPTH} levels deep",
                f"at most {MAX_DEPTH} levels of nesting",
            )
        active.add(key)
        n, d = 1, 0
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                name = str(k.value)
                sub = f"{path}.{name}" if path else name
                if name in seen:
                    raise IdeaCardError(
                        source,
                        f"duplicate key {name!r} (first on line {seen[name]})",
                        line=k.start_mark.line + 1,
                        path=sub,
                        found=name,
                        expected="each key once per mapping (YAML would silently keep the last)",
                    )
                seen[name] = k.start_mark.line + 1
                visit(v, sub, level + 1)
                n, d = n + size[id(v)], max(d, depth[id(v)])
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                visit(item, f"{path}[{i}]", level + 1)
                n, d = n + size[id(item)], max(d, depth[id(item)])
        active.discard(key)
        if level + d > MAX_DEPTH:
            raise fail(
                node,
                path,
                f"nested more than {MAX_DEPTH} levels deep (through aliases)",
                f"at most {MAX_DEPTH} levels of nesting",
            )
        if n > MAX_VALUES:
            raise fail(
                node,
                path,
                f"expands to more than {MAX_VALUES:,} values (an alias bomb?)",
                "a card of ordinary size; YAML aliases that are not nested many times",
            )
        size[key], depth[key] = n, d + 1

    visit(root, "", 0)


def split_path(path: str) -> list[str | int]:
    """ "blocks[2].then.enter_long" -> ["blocks", 2, "then", "enter_long"]."""
    out: list[str | int] = []
    for idx, key in _PATH_RE.findall(path):
        out.append(int(idx) if idx else key)
    return out


def format_path(loc: list[str | int] | tuple[str | int, ...]) -> str:
    """The inverse of ``split_path``."""
    text = ""
    for elem in loc:
        if isinstance(elem, int):
            text += f"[{elem}]"
        else:
            text += f".{elem}" if text else str(elem)
    return text


def walk(
    root: yaml.Node | None, loc: list[str | int] | tuple[str | int, ...]
) -> tuple[list[str | int], yaml.Node | None, yaml.Node | None]:
    """Follow ``loc`` as far as the YAML goes.

    Returns (the elements that matched the document, the deepest node reached, the key
    node of the last mapping step). Elements that name nothing in the document (pydantic
    union tags, a missing field) are skipped, except that a trailing unmatched key is kept
    (so "missing field" and "unknown key" errors name the field).
    """
    node = root
    key_node: yaml.Node | None = None
    kept: list[str | int] = []
    for i, elem in enumerate(loc):
        if isinstance(elem, str) and elem.startswith("<"):
            continue  # a pydantic union tag, not a key
        if isinstance(node, yaml.MappingNode) and isinstance(elem, str):
            for k, v in node.value:
                if str(k.value) == elem:
                    kept.append(elem)
                    key_node, node = k, v
                    break
            else:
                if i == len(loc) - 1:
                    kept.append(elem)
            continue
        if isinstance(node, yaml.SequenceNode) and isinstance(elem, int):
            if 0 <= elem < len(node.value):
                kept.append(elem)
                key_node, node = None, node.value[elem]
            elif i == len(loc) - 1:
                kept.append(elem)
            continue
    return kept, node, key_node


def line_of(root: yaml.Node | None, loc: list[str | int] | tuple[str | int, ...]) -> int | None:
    """1-based line of the deepest node ``loc`` reaches (a key's own line for mappings)."""
    if root is None:
        return None
    _, node, key_node = walk(root, loc)
    if key_node is not None and isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        return key_node.start_mark.line + 1
    return None if node is None else node.start_mark.line + 1


def key_line(root: yaml.Node | None, loc: list[str | int] | tuple[str | int, ...]) -> int | None:
    """1-based line of the key named by the last element of ``loc`` (for unknown keys)."""
    if root is None or not loc:
        return None
    kept, _node, key_node = walk(root, loc)
    if kept and kept[-1] == loc[-1] and key_node is not None and str(key_node.value) == loc[-1]:
        return key_node.start_mark.line + 1
    return line_of(root, loc[:-1])
