"""YAML data files loaded into pydantic models, with one kind of error message (pure but for reading the file).

The rules, mappings and policies under `topology/` are data, validated on load; every loader says what
went wrong the same way, naming the file:

- `<path>: cannot read <what>: <reason>` when the file cannot be read,
- `<path>: not valid YAML: <parser message>` when it does not parse,
- `<path>: invalid <what>: <field.path: message; ...>` when the model refuses it.

Each loader raises its own error class (a ValueError subclass the caller catches), passed as `error`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shopstream.validation import problems

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, error: Callable[[str], Exception], what: str) -> Any:
    """The parsed YAML document at `path` (None for an empty file); `error` for an unreadable or broken file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
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
