"""`shopstream ingest pim` parsing: CSV, JSON and JSON Lines rows, bad rows with their line numbers."""

from __future__ import annotations

import json

import pytest

from shopstream.connectors.pim import PimProduct
from shopstream.connectors.pim_file import PimFileError, RowError, read_pim_file

T = "2026-12-06T10:00:00+00:00"


def rows(data: str) -> list[tuple[int, PimProduct | RowError]]:
    return list(read_pim_file(data.encode(), T))


def test_csv_rows_with_attributes_options_images_and_prices() -> None:
    text = ("sku;title;price;cost;currency;attr:name:de_DE;attr:description:en_GB:ecommerce;option:size;images;active\n"
            "A-1;Alpha;10.50;4;EUR;Alpha DE;Long text;M;https://x/a.jpg 1200x1200|https://x/b.png;yes\n")
    [(line, product)] = rows(text)
    assert line == 2 and isinstance(product, PimProduct)
    assert product.price is not None and product.price.amount == "10.50" and product.options == {"size": "M"}
    assert [(a.code, a.locale, a.channel) for a in product.attributes] == [("name", "de_DE", None),
                                                                          ("description", "en_GB", "ecommerce")]
    assert [(i.width, i.height) for i in product.images] == [(1200, 1200), (None, None)]
    assert product.updated_at == T


def test_csv_bad_rows_are_reported_with_their_line_numbers() -> None:
    text = ("sku,title,price,active,weight_grams\n"
            "A-1,Alpha,1.00,true,10\n"
            ",No sku,1.00,true,1\n"
            "A-3,Bad active,1.00,maybe,1\n"
            "A-1,Duplicate,1.00,true,1\n"
            "A-5,Too many,1.00,true,1,extra\n"
            "A-6,Bad weight,1.00,true,-5\n")
    result = rows(text)
    assert [(line, type(r).__name__) for line, r in result] == [
        (2, "PimProduct"), (3, "RowError"), (4, "RowError"), (5, "RowError"), (6, "RowError"), (7, "RowError")]
    errors = {line: r for line, r in result if isinstance(r, RowError)}
    assert "sku" in errors[3].reason and "active" in errors[4].reason and errors[5].kind == "DuplicateRow"
    assert errors[6].kind == "WrongColumnCount" and errors[7].raw == "A-6,Bad weight,1.00,true,-5"


def test_json_array_and_json_lines() -> None:
    array = json.dumps([{"sku": "A", "title": "a"}, {"title": "no sku"}])
    assert [(n, type(r).__name__) for n, r in rows(array)] == [(1, "PimProduct"), (2, "RowError")]
    lines = '{"sku": "A", "title": "a"}\n\n{not json\n{"sku": "B", "price": {"amount": "1", "currency": "EUR"}}\n'
    assert [(n, type(r).__name__) for n, r in rows(lines)] == [(1, "PimProduct"), (3, "RowError"), (4, "PimProduct")]


@pytest.mark.parametrize("data", [b"", b"\xff\xfe", b"title,price\nx,1\n", b"[1, 2"])
def test_unusable_files_are_refused_before_any_row(data: bytes) -> None:
    with pytest.raises(PimFileError):
        list(read_pim_file(data, T))
