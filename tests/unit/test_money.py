from __future__ import annotations

from decimal import Decimal

import pytest

from shopstream.money import format_amount, minor_units


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("EUR", 2), ("usd", 2), ("JPY", 0), ("KRW", 0), ("VND", 0), ("CLP", 0), ("ISK", 0),
     ("BHD", 3), ("KWD", 3), ("OMR", 3), ("JOD", 3), ("TND", 3), ("CLF", 4), ("XYZ", 2)],
)
def test_minor_units(currency: str, digits: int) -> None:
    assert minor_units(currency) == digits


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("12.5"), "EUR", "12.50"),
        (Decimal("12.5000"), "EUR", "12.50"),
        (Decimal("12"), "EUR", "12.00"),
        (Decimal("0"), "EUR", "0.00"),
        (Decimal("-0.00"), "EUR", "0.00"),
        (Decimal("-3.1"), "EUR", "-3.10"),
        (Decimal("1200"), "JPY", "1200"),
        (Decimal("1200.0000"), "JPY", "1200"),
        (Decimal("1.5"), "KWD", "1.500"),
        (Decimal("1E+3"), "EUR", "1000.00"),
        (Decimal("123456789012.3456"), "USD", "123456789012.3456"),
        ("7.25", "EUR", "7.25"),
        (3, "EUR", "3.00"),
    ],
)
def test_format_amount(amount: Decimal | str | int, currency: str, expected: str) -> None:
    assert format_amount(amount, currency) == expected


def test_extra_precision_is_kept_not_rounded() -> None:
    # A read view must not show a different amount than the canonical state.
    assert format_amount(Decimal("0.0125"), "EUR") == "0.0125"
    assert format_amount(Decimal("100.5"), "JPY") == "100.5"


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), "abc", ""])
def test_format_amount_rejects_non_numbers(bad: Decimal | str) -> None:
    with pytest.raises(ValueError):
        format_amount(bad, "EUR")
