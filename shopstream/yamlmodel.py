"""YAML data files loaded into pydantic models, with one kind of error message (pure but for reading the file).

The rules, mappings and policies under `topology/` are data, validated on load; every loader says what
went wrong the same way, naming the file:

- `<path>: cannot read <what>: <reason>` when the file cannot be read,
- `<path>: not valid YAML: <parser message>` when it does not parse,
- `<path>: invalid <what>: <field.path: message; ...>` when the model refuses it.

Rule files people edit by hand (review rules, rates, anomaly rules) go through `parse_located`, which also
names the line of the first problem: `<path>:<line>: invalid <what>: <field.path>: <message>`.

Each loader raises its own error class (a ValueError subclass the caller catches), passed as `error`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shopstream.validation import problems

M = TypeVar("M", bound=BaseModel)


def read_text(path: Path, error: Callable[[str], Exception], what: str) -> str:
    """The UTF-8 text at `path`; `error` saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def read_yaml(path: Path, error: Callable[[str], Exception], what: str) -> Any:
    """The parsed YAML document at `path` (None for an empty file); `error` for an unreadable or broken file."""
    text = read_text(path, error, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def validate_model(model: type[M], data: Any, error: Callable[[str], Exception], what: str, origin: str, *,
                   show_input: bool = False) -> M:
    """`data` (already parsed) as `model`; `error` naming `origin` and every problem otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(problems(exc, show_input=show_input))
        raise error(f"{origin}: invalid {what}: {reasons}") from None


def load_yaml_model(path: Path | str, model: type[M], error: Callable[[str], Exception], what: str, *,
                    empty_is_defaults: bool = False, show_input: bool = False) -> M:
    """Read `path` and validate it as `model`.

    `empty_is_defaults`: an empty file is `{}` (every field at its default) rather than an error.
    """
    path = Path(path)
    data = read_yaml(path, error, what)
    if data is None and empty_is_defaults:
        data = {}
    return validate_model(model, data, error, what, str(path), show_input=show_input)


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int:
    """1-based line of the deepest YAML node on the path `loc` (the line of the document start otherwise)."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = child.start_mark.line + 1 if not isinstance(child, yaml.ScalarNode) else line
    return line


def parse_located(text: str, origin: str, model: type[M], error: Callable[[str], Exception], what: str, *,
                  yaml_path: Callable[[Sequence[str | int]], Sequence[str | int]] = tuple) -> M:
    """`text` validated as `model`; `error` naming origin, the line and field path of the first problem.

    `yaml_path` maps pydantic's error location back to the file's keys (a union tag or a renamed field
    is not in the file)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{origin}{line}: not valid YAML: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(yaml_path(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise error(f"{origin}:{line_of(node, loc)}: invalid {what}: "
                    f"{'.'.join(map(str, loc)) or '(top level)'}: {msg}") from None
