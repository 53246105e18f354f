"""PIM export files for `shopstream ingest pim FILE` (pure): CSV or JSON into generic PIM rows, errors by line.

Formats (told apart by the first non-blank character):
- **JSON**: an array of `PimProduct` objects (`connectors/pim.py`), or `{"products": [...]}`; a bad
  item is reported as `item N` (1-based) with the line its object starts on.
- **JSON Lines**: one `PimProduct` object per line (line numbers as in the file).
- **CSV** (comma or semicolon, UTF-8 with or without BOM; header = line 1): columns `sku` (required),
  `title`, `product_id`, `description`, `family`, `category`, `brand`, `barcode`, `slug`, `active`
  (true/false/1/0/yes/no), `price`, `cost`, `currency` (default EUR), `weight_grams`, `updated_at`
  (ISO-8601 with zone; default: the run's time), `channels`, `tags` (`|`-separated), `images`
  (`|`-separated `URL` or `URL WIDTHxHEIGHT`), `attr:<code>[:<locale>[:<channel>]]` (an attribute
  value) and `option:<axis>` (a variant axis value). Empty cells are absent values.
A row that fails (no SKU, a bad number or time, a duplicate SKU in the file) is a `RowError` with its
line number and the raw text; the others are `PimProduct`s; each is yielded with its line (item) number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shopstream.connectors.pim import PimProduct
from shopstream.validation import problems

KNOWN = {"sku", "title", "product_id", "description", "family", "category", "brand", "barcode", "slug", "active",
         "price", "cost", "currency", "weight_grams", "updated_at", "channels", "tags", "images"}
_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n"}


class PimFileError(ValueError):
    """The file as a whole cannot be read (nothing is published)."""


@dataclass(frozen=True)
class RowError:
    """One rejected row: where, why, and its raw text (parked as is)."""

    line_number: int
    reason: str
    raw: str
    kind: str = "InvalidRow"


def _row_error(line: int, exc: ValidationError | ValueError, raw: str) -> RowError:
    if isinstance(exc, ValidationError):
        return RowError(line, "; ".join(problems(exc, root="(row)", limit=5)), raw)
    return RowError(line, str(exc), raw)


def _csv_row(row: dict[str, str], default_time: str) -> dict[str, Any]:
    data: dict[str, Any] = {"attributes": [], "options": {}}
    currency = (row.get("currency") or "EUR").strip() or "EUR"
    for column, cell in row.items():
        value = (cell or "").strip()
        if not value or column is None:
            continue
        if column.startswith("attr:"):
            code, locale, channel = ([*column[5:].split(":"), None, None])[:3]
            data["attributes"].append({"code": code, "value": value, "locale": locale or None,
                                       "channel": channel or None})
        elif column.startswith("option:"):
            data["options"][column[7:]] = value
        elif column in ("price", "cost"):
            data[column] = {"amount": value, "currency": currency}
        elif column == "active":
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(f"active: expected true/false, got {value!r}")
            data["active"] = value.lower() in _TRUE
        elif column in ("channels", "tags"):
            data[column] = [v.strip() for v in value.split("|") if v.strip()]
        elif column == "images":
            data["images"] = [_image(v.strip()) for v in value.split("|") if v.strip()]
        elif column in KNOWN and column != "currency":
            data[column] = value
    data.setdefault("updated_at", default_time)
    return data


def _image(text: str) -> dict[str, Any]:
    url, _, size = text.partition(" ")
    if not size:
        return {"url": url}
    width, _, height = size.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ValueError(f"images: size must be WIDTHxHEIGHT, got {size!r}")
    return {"url": url, "width": int(width), "height": int(height)}


def _csv(text: str, default_time: str) -> Iterator[tuple[int, PimProduct | RowError]]:
    """Checks the header at once (PimFileError), then yields the rows."""
    lines = text.splitlines()
    if not lines:
        raise PimFileError("empty file")
    dialect = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=dialect)
    if not reader.fieldnames or "sku" not in [f.strip() for f in reader.fieldnames]:
        raise PimFileError(f"header has no sku column: {lines[0][:200]!r}")
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    return _csv_rows(reader, lines, default_time)


Rows = Iterator[tuple[int, PimProduct | RowError]]


def _csv_rows(reader: csv.DictReader[str], lines: list[str], default_time: str) -> Rows:
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        raw = lines[line - 1] if line - 1 < len(lines) else ""
        if None in row:
            yield line, RowError(line, "more cells than header columns", raw, "WrongColumnCount")
            continue
        try:
            product = PimProduct.model_validate(_csv_row(row, default_time))
        except (ValidationError, ValueError) as exc:
            yield line, _row_error(line, exc, raw)
            continue
        if product.sku in seen:
            yield line, RowError(line, f"duplicate sku {product.sku!r} in the file", raw, "DuplicateRow")
            continue
        seen.add(product.sku)
        yield line, product


def _json_items(text: str) -> Iterator[tuple[int, Any, str]]:
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and '"products"' in stripped[:200]
                                    and not text.strip().count("\n{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PimFileError(f"not JSON: {exc}") from None
        items = data.get("products") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise PimFileError("JSON: expected an array of products or {\"products\": [...]}")
        for index, item in enumerate(items, start=1):
            yield index, item, json.dumps(item)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), line
        except json.JSONDecodeError as exc:
            yield number, exc, line


def _json(text: str, default_time: str) -> Iterator[tuple[int, PimProduct | RowError]]:
    items = list(_json_items(text))  # a broken JSON document is a file-level error, raised before any row
    return _json_rows(items, default_time)


def _json_rows(items: list[tuple[int, Any, str]], default_time: str) -> Iterator[tuple[int, PimProduct | RowError]]:
    seen: set[str] = set()
    for number, item, raw in items:
        if isinstance(item, json.JSONDecodeError):
            yield number, RowError(number, f"not JSON: {item.msg}", raw, "NotJson")
            continue
        if not isinstance(item, dict):
            yield number, RowError(number, "not a JSON object", raw)
            continue
        try:
            product = PimProduct.model_validate({"updated_at": default_time, **item})
        except ValidationError as exc:
            yield number, _row_error(number, exc, raw)
            continue
        if product.sku in seen:
            yield number, RowError(number, f"duplicate sku {product.sku!r} in the file", raw, "DuplicateRow")
            continue
        seen.add(product.sku)
        yield number, product


def read_pim_file(data: bytes, default_time: str) -> Iterator[tuple[int, PimProduct | RowError]]:
    """Rows of a PIM export (CSV, JSON or JSON Lines); PimFileError when the file itself is unusable."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PimFileError(f"not UTF-8: {exc}") from None
    if not text.strip():
        raise PimFileError("empty file")
    first = text.lstrip()[0]
    return _json(text, default_time) if first in "[{" else _csv(text, default_time)
