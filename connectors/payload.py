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
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shopstream.connectors.base import PayloadError
from shopstream.validation import problems

#: The largest webhook body the front reads (413 beyond it). A parked body travels on `connectors.dlq` with up
#: to ~12 KiB of context headers, and Kafka's default message limit (`message.max.bytes`, librdkafka's
#: `message.max.bytes`) is 1 MB: 768 KiB keeps every accepted body parkable on an untuned cluster.
MAX_BODY = 768 * 1024
#: How much of a body larger than MAX_BODY is parked with its 413 (enough to see what the sender sent).
PARKED_PREFIX = 64 * 1024
#: JSON nesting deeper than this is refused: no source nests more than ~10 levels, and deep nesting turns
#: into RecursionError in the parser, in pydantic or in the Avro writer.
MAX_DEPTH = 64
#: Amounts from here on are refused as text (canonical Money, decimal(18, 4), refuses 10^14 and up with its own
#: reason); below it, rounding to 4 places stays within Decimal's 28 digits of precision.
MAX_AMOUNT = Decimal(10) ** 18
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
    except RecursionError:
        raise PayloadError(f"body is not JSON we accept: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer beyond the int-string limit (4,300 digits)
        raise PayloadError(f"body is not JSON we accept: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object")
    if too_deep(data, MAX_DEPTH):
        raise PayloadError(f"body is not JSON we accept: nested deeper than {MAX_DEPTH} levels")
    return data


def too_deep(value: Any, limit: int) -> bool:
    """True when lists and dicts in `value` nest deeper than `limit` (checked iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decimal_amount(value: Any, field: str, *, allow_float: bool = False) -> Decimal:
    """A JSON amount (string or number; a float only when `allow_float`, read through its shortest repr) as an
    exact finite Decimal below MAX_AMOUNT.

    Raises ValueError (pydantic validators turn it into a readable refusal): an amount of 30 digits must be
    a 422, not an InvalidOperation when it is later rounded to 4 places."""
    if isinstance(value, bool) or value is None or (isinstance(value, float) and not allow_float):
        raise ValueError(f"{field}: not a decimal amount: {value!r}")
    text = str(value).strip()
    if len(text) > 64:
        raise ValueError(f"{field}: not a decimal amount ({len(text)} characters)")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{field}: not a decimal amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"{field}: not a finite amount")
    if abs(amount) >= MAX_AMOUNT:
        raise ValueError(f"{field}: amount too large: {text}")
    return amount


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
