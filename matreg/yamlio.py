"""Load YAML into pydantic models, reporting every problem with its file and line.

A key a mapping holds twice is refused (YAML forbids it; PyYAML alone keeps the last one silently), and so is a file
that is not UTF-8 text.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from matreg.errors import ConfigError, undecodable_at

Model = TypeVar("Model", bound=pydantic.BaseModel)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML was built with it
_MERGE_TAG = "tag:yaml.org,2002:merge"
# What YAML reads an unquoted scalar as, by its tag, where that is no text: `version: 1.0` is a number
_NOT_TEXT = {
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false",
}


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
        raise _file_problems(path, data, exc) from exc


def problem_in(path: Path, model: type[pydantic.BaseModel], loc: tuple[str | int, ...], problem: str) -> ConfigError:
    """The error of a problem found after `load_model` read the file, in its entry `loc` (a catalog dataset's version
    that a release cannot have), named as `load_model` names the file's own problems: file, line and keys."""
    return _file_problems(path, load_yaml(path), entry_problem(model, loc, problem))


def _file_problems(path: Path, data: Any, exc: pydantic.ValidationError) -> ConfigError:
    """The error naming the file and, by line and keys, pydantic's problems with its `data`."""
    tree = _parse(path, yaml.compose)  # the node tree only to report the lines
    return ConfigError(f"{path}: {_problems(exc.errors(), data, tree)}")


def entry_problem(
    model: pydantic.BaseModel | type[pydantic.BaseModel], loc: tuple[str | int, ...], problem: str
) -> pydantic.ValidationError:
    """A problem a validator finds in one entry of the file (`loc`: ('columns', 'Cp', 'unit'); in a field validator,
    below the field: (2,), its third item), as pydantic's error at that entry, for `load_model` to name its line (a
    ValueError a model validator raises is at the top level: line 1)."""
    title = model.__name__ if isinstance(model, type) else type(model).__name__
    error = {"type": "value_error", "loc": loc, "input": None, "ctx": {"error": problem}}
    return pydantic.ValidationError.from_exception_data(title, [error])


def _problems(errors: list[Any], data: Any, tree: yaml.Node | None) -> str:
    """Every unknown key (a misspelt key is both an unknown and a missing one: the unknown one names the typo), then
    the first other problem pydantic found (`_first_problem`), each where it is in the file (`_yaml_path`)."""
    located = [(_yaml_path(data, error), error) for error in errors]
    unknown = [loc for loc, error in located if error["type"] == "extra_forbidden"]
    parts = [_located(tree, loc, f"{_dotted(loc[:-1])}: unknown key '{loc[-1]}'") for loc in unknown]
    others = [(loc, error) for loc, error in located if error["type"] != "extra_forbidden"]
    if others:
        loc, error = _first_problem(others)
        if error["type"] == "missing" and any(key[:-1] == loc[:-1] for key in unknown):
            parts.append(f"missing '{loc[-1]}'")
        else:
            parts.append(_located(tree, loc, f"{_dotted(loc)}: {error['msg']}{_quote_hint(tree, loc, error)}"))
    return "; ".join(parts)


def _first_problem(located: list[tuple[tuple[Any, ...], Any]]) -> tuple[tuple[Any, ...], Any]:
    """The first (path, error) pydantic found, or the deepest one within its entry: of an entry that may be of several
    types (a number, or a mapping of numbers), the problem of the type the file gave (the mapping's key -1)."""
    first = located[0][0]
    return max((item for item in located if item[0][: len(first)] == first), key=lambda item: len(item[0]))


def _yaml_path(data: Any, error: Any) -> tuple[Any, ...]:
    """Where pydantic's error is, by the keys and indexes of the YAML data: without the names pydantic gives the
    types an entry may have ('constrained-float' of a number or a mapping), a missing key last."""
    path: list[Any] = []
    last = len(error["loc"]) - 1
    for n, part in enumerate(error["loc"]):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        elif not (error["type"] == "missing" and n == last):
            continue
        path.append(part)
    return tuple(path)


def _quote_hint(tree: yaml.Node | None, loc: tuple[Any, ...], error: Any) -> str:
    """For a text that YAML read as a number or true/false (`version: 1.0`), how to write it as text."""
    node = _node_at(tree, loc)
    if error["type"] != "string_type" or not isinstance(node, yaml.ScalarNode) or node.tag not in _NOT_TEXT:
        return ""
    return f" (YAML reads {node.value} as {_NOT_TEXT[node.tag]}: write text in quotes, '{node.value}')"


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
        raise _unreadable(Path(path), exc) from exc
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


def _unreadable(path: Path, error: OSError) -> ConfigError:
    """The error of reading `path`: the OS's reason, but for a name in it or the whole of it too long for the file
    system (ENAMETOOLONG), which is said as matreg says it of the paths it refuses, with how long it is and the limit
    (`name_too_long`)."""
    if error.errno != errno.ENAMETOOLONG:
        return ConfigError(f"cannot read {path}: {error.strerror}")
    from matreg.store import name_too_long  # (here: the store reads its schemas by this module)

    return name_too_long(error, path, f"cannot read {path}")


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest entry on the path `loc` that exists in the YAML tree: its key's line (a mapping's
    block begins on the next), an item's own."""
    entries = _entries(node, loc)
    place = entries[-1][0] if entries else node
    return place.start_mark.line + 1 if place is not None else None


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The node of the YAML tree at the path `loc`; None where there is none."""
    entries = _entries(node, loc)
    return entries[-1][1] if loc and len(entries) == len(loc) else None


def _entries(node: yaml.Node | None, loc: tuple[Any, ...]) -> list[tuple[yaml.Node, yaml.Node]]:
    """The entries on the path `loc` that the YAML tree has, from the top: each one's key node (an item: the item)
    and its value's node."""
    entries = []
    for part in loc:
        entry = _entry(node, part)
        if entry is None:
            break
        entries.append(entry)
        node = entry[1]
    return entries


def _entry(node: yaml.Node | None, key: Any) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == str(key):
                return key_node, value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key], node.value[key]
    return None
