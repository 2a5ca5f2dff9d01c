"""Load YAML into pydantic models, reporting every problem with its file and line.

A key a mapping holds twice is refused (YAML forbids it; PyYAML alone keeps the last one silently), and so is a file
that is not UTF-8 text.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from matreg.errors import ConfigError, undecodable_at

Model = TypeVar("Model", bound=pydantic.BaseModel)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML was built with it
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(_SAFE_LOADER):
    """The safe loader, refusing a mapping that holds a key twice (the line of the second, and of the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *defaults`: the keys it merges may be given again
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):  # (a list as a key: the parent class says it cannot be one)
                continue
            if key in first_lines:
                problem = f"duplicate key {key!r} (first on line {first_lines[key]}): give each key once"
                raise yaml.constructor.ConstructorError(problem=problem, problem_mark=key_node.start_mark)
            first_lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file into Python data (safe tags only); ConfigError with the line if it is malformed."""
    return _parse(path, yaml.load)


def load_model(path: Path, model: type[Model]) -> Model:
    """Validate a YAML file against `model`; errors name the file, line and field."""
    data = load_yaml(path)
    try:
        return model.model_validate(data if data is not None else {})
    except pydantic.ValidationError as exc:
        tree = _parse(path, yaml.compose)  # the node tree only to report the lines
        raise ConfigError(f"{path}: {_problems(exc.errors(), tree)}") from exc


def entry_problem(model: pydantic.BaseModel, loc: tuple[str, ...], problem: str) -> pydantic.ValidationError:
    """A problem a model validator finds in one entry of the file (`loc`: ('columns', 'Cp', 'unit')), as pydantic's
    error at that entry, for `load_model` to name its line (a ValueError a model validator raises is at the top level:
    line 1)."""
    error = {"type": "value_error", "loc": loc, "input": None, "ctx": {"error": problem}}
    return pydantic.ValidationError.from_exception_data(type(model).__name__, [error])


def _problems(errors: list[Any], tree: yaml.Node | None) -> str:
    """Every unknown key (a misspelt key is both an unknown and a missing one: the unknown one names the typo), then
    the first other problem pydantic found."""
    unknown = [error["loc"] for error in errors if error["type"] == "extra_forbidden"]
    parts = [_located(tree, loc, f"{_dotted(loc[:-1])}: unknown key '{loc[-1]}'") for loc in unknown]
    others = [error for error in errors if error["type"] != "extra_forbidden"]
    if others:
        loc = others[0]["loc"]
        if others[0]["type"] == "missing" and any(key[:-1] == loc[:-1] for key in unknown):
            parts.append(f"missing '{loc[-1]}'")
        else:
            parts.append(_located(tree, loc, f"{_dotted(loc)}: {others[0]['msg']}"))
    return "; ".join(parts)


def _located(tree: yaml.Node | None, loc: tuple[Any, ...], problem: str) -> str:
    """The problem, after the line of what `loc` names."""
    line = line_of(tree, loc)
    return f"line {line}: {problem}" if line else problem


def _dotted(loc: tuple[Any, ...]) -> str:
    """Where an entry is, as 'columns.Cp.unit' (an empty key as '': `columns.''`)."""
    return ".".join(str(part) or "''" for part in loc) or "(top level)"


def _parse(path: Path, parse: Callable[..., Any]) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = undecodable_at(data, exc)
        raise ConfigError(f"cannot read {path}: not UTF-8 text: {where}; save it as UTF-8") from None
    try:
        return parse(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{line}: malformed YAML: {exc.problem or exc}") from exc


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node on the path `loc` that exists in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        child = _child(node, key)
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == str(key):
                return value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None
