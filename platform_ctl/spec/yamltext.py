"""The spec's YAML text: strict parsing (no duplicate keys) and edits that keep every other byte."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from platform_ctl.errors import SpecError
from platform_ctl.spec.messages import _ALLOWED, _key_path


class _DuplicateKeyError(Exception):
    def __init__(self, key_path: str, line: int, first_line: int) -> None:
        super().__init__(key_path)
        self.key_path = key_path
        self.line = line
        self.first_line = first_line


class StrictSafeLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a mapping key given twice (PyYAML silently keeps the last one)."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_duplicates(node, [])
        return super().construct_document(node)


def _check_duplicates(node: yaml.Node, path: list[str | int]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` overrides are deliberate
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if ident in seen:
                    raise _DuplicateKeyError(_key_path([*path, key_node.value]), line, seen[ident])
                seen[ident] = line
                _check_duplicates(value_node, [*path, key_node.value])
            else:
                _check_duplicates(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicates(item, [*path, index])


def parse_yaml(text: str, path: object) -> Any:
    """Parse one YAML document strictly; syntax errors and duplicate keys become SpecError."""
    try:
        return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - StrictSafeLoader is a SafeLoader
    except _DuplicateKeyError as dup:
        raise SpecError(
            path,
            dup.key_path,
            f"duplicate key (line {dup.line}, first given at line {dup.first_line}); allowed: each key once",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if exc.problem and exc.context and exc.context_mark and exc.context_mark != mark:
            start = exc.context_mark
            problem += f" ({exc.context} from line {start.line + 1}, column {start.column + 1})"
        allowed = "valid YAML (check indentation and quoting)"
        raise SpecError(path, "", f"YAML syntax error{where}: {problem}; allowed: {allowed}") from None
    except yaml.YAMLError as exc:
        raise SpecError(path, "", f"YAML error: {' '.join(str(exc).split())}; allowed: valid YAML") from None


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of ``key`` in a YAML mapping node, or None."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value_node
    return None


def with_group_count(text: str, path: Path, group: str, count: int) -> str:
    """The spec ``text`` with ``groups.<group>.count`` set to ``count``, every other byte unchanged.

    Day-2 commands change one number of a file people edit, so comments, order and flow style stay
    as they wrote them; the result must still be validated (:func:`parse_spec`).
    """
    root = yaml.compose(text, Loader=StrictSafeLoader)
    node = _child(_child(_child(root, "groups"), group), "count")
    if not isinstance(node, yaml.ScalarNode):
        raise SpecError(path, f"groups.{group}.count", f"not given; allowed: {_ALLOWED['groups']}")
    start, end = node.start_mark.index, node.end_mark.index
    return text[:start] + str(count) + text[end:]


def with_minio_pools(text: str, pools: Sequence[int]) -> str:
    """The spec ``text`` with ``minio.pools`` set to ``pools`` (flow style), every other byte unchanged.

    An existing ``pools`` value is replaced in place; otherwise the key is added as the first key of
    the ``minio`` mapping (block or flow), or a ``minio`` mapping is appended.
    """
    value = "[" + ", ".join(str(int(size)) for size in pools) + "]"
    root = yaml.compose(text, Loader=StrictSafeLoader)
    minio = _child(root, "minio")
    existing = _child(minio, "pools")
    if existing is not None:
        start, end = existing.start_mark.index, existing.end_mark.index
        return text[:start] + value + text[end:]
    if isinstance(minio, yaml.MappingNode) and minio.flow_style:
        inside = minio.start_mark.index + 1  # after "{"
        return text[:inside] + f"pools: {value}" + (", " if minio.value else "") + text[inside:]
    if isinstance(minio, yaml.MappingNode) and minio.value:
        first = minio.value[0][0].start_mark
        return text[:first.index] + f"pools: {value}\n" + " " * first.column + text[first.index:]
    if minio is not None:  # `minio:` with no value
        start, end = minio.start_mark.index, minio.end_mark.index
        return text[:start] + ("" if text[start - 1:start] == " " else " ") + f"{{pools: {value}}}" + text[end:]
    return text + ("" if text.endswith("\n") or not text else "\n") + f"minio:\n  pools: {value}\n"
