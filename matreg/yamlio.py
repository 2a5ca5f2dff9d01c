"""Load YAML into pydantic models, reporting every problem with its file and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from matreg.errors import ConfigError

Model = TypeVar("Model", bound=pydantic.BaseModel)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML was built with it


def load_yaml(path: Path) -> Any:
    """Parse a YAML file into Python data (safe tags only); ConfigError with the line if it is malformed."""
    return _parse(path, yaml.load)


def load_model(path: Path, model: type[Model]) -> Model:
    """Validate a YAML file against `model`; errors name the file, line and field."""
    data = load_yaml(path)
    try:
        return model.model_validate(data if data is not None else {})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "(top level)"
        line = line_of(_parse(path, yaml.compose), first["loc"])  # the node tree only to report the line
        where = f"{path}: line {line}" if line else f"{path}"
        raise ConfigError(f"{where}: {location}: {first['msg']}") from exc


def _parse(path: Path, parse: Callable[..., Any]) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return parse(text, Loader=_LOADER)
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
