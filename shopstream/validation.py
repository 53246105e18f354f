"""Pydantic validation errors as text people read (pure: no I/O).

One place for the `field.path: message` form every loader and connector reports: webhook bodies
(`connectors/payload.py`), ERP deltas, and the YAML data files under `topology/`
(`shopstream/yamlmodel.py`).
"""

from __future__ import annotations

from pydantic import ValidationError


def problems(exc: ValidationError, *, root: str = "(top level)", limit: int | None = None,
             show_input: bool = False, strip_value_error: bool = False) -> list[str]:
    """One `loc.path: message` line per error (the first `limit` of them; all when None).

    `root` names an error about the whole document (empty location); `show_input` appends
    ` (got <value>)` for a scalar input; `strip_value_error` drops pydantic's "Value error, " prefix of
    messages raised by validators.
    """
    lines = []
    for err in exc.errors()[:limit]:
        msg = err["msg"].removeprefix("Value error, ") if strip_value_error else err["msg"]
        line = f"{'.'.join(str(p) for p in err['loc']) or root}: {msg}"
        if show_input and not isinstance(err["input"], dict | list | tuple):
            line += f" (got {err['input']!r})"
        lines.append(line)
    return lines
