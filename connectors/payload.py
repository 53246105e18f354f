"""Webhook bodies: size limit, JSON loading and the reasons a body is refused (pure: no I/O).

Every source connector reads its body through `load_json_object` and words a pydantic refusal through
`validation_reasons`, so a 422 reads the same for every source:
`body is not JSON: …`, `body is not a JSON object`, `not a <what>: field.path: message; …` (the first
five problems).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shopstream.connectors.base import PayloadError
from shopstream.validation import problems

#: The largest webhook body the front reads (413 beyond it).
MAX_BODY = 5 * 1024 * 1024
#: How many pydantic problems a refusal names.
MAX_REASONS = 5

M = TypeVar("M", bound=BaseModel)


def load_json_object(body: bytes, *, exact_numbers: bool = True) -> dict[str, Any]:
    """The body as a JSON object; PayloadError otherwise.

    `exact_numbers`: JSON numbers with a fraction become Decimal, so an amount never passes through a
    binary float (the Shopify order path still reads them as floats and converts them itself).
    """
    try:
        data = json.loads(body, parse_float=Decimal) if exact_numbers else json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object")
    return data


def validation_reasons(exc: ValidationError) -> str:
    """The first few pydantic errors as `field.path: message`, `;`-separated."""
    return "; ".join(problems(exc, root="(body)", limit=MAX_REASONS))


def parse_body(model: type[M], body: bytes, what: str, *, exact_numbers: bool = True) -> M:
    """The body validated as `model`; PayloadError `not a <what>: <reasons>` otherwise."""
    data = load_json_object(body, exact_numbers=exact_numbers)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(f"not a {what}: {validation_reasons(exc)}") from None


@contextmanager
def representing(what: str) -> Iterator[None]:
    """Build canonical records inside: a ValidationError becomes PayloadError `<what> cannot be represented: …`."""
    try:
        yield
    except ValidationError as exc:
        raise PayloadError(f"{what} cannot be represented: {validation_reasons(exc)}") from None
