"""Money presentation: an exact Decimal amount as a string with the currency's minor-unit digits.

Canonical events carry `Money{amount: Decimal (scale ≤ 4), currency}` in major units. Read views
and APIs show amounts as decimal *strings* (never JSON floats) padded to the currency's ISO 4217
minor units: `12.5 EUR -> "12.50"`, `1200 JPY -> "1200"`, `1.5 KWD -> "1.500"`.

A view must never state a different amount than the canonical state, so digits beyond the minor
units are kept when they are not zero (`0.0125 EUR -> "0.0125"`) instead of being rounded away;
trailing zeros beyond the minor units are dropped (`12.5000 EUR -> "12.50"`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

DEFAULT_MINOR_UNITS = 2

# ISO 4217 currencies whose minor unit is not 2 (the default). Funds codes (BOV, CLF, ...) that
# shops do not invoice in are left out on purpose except where their exponent differs.
_EXPONENTS: dict[str, int] = {
    # no minor unit
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"),
        0,
    ),
    # three decimals
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    # four decimals (unidad de fomento, unidad previsional)
    "CLF": 4,
    "UYW": 4,
}


def minor_units(currency: str) -> int:
    """How many decimal digits the currency's minor unit has (2 for unknown codes)."""
    return _EXPONENTS.get(currency.strip().upper(), DEFAULT_MINOR_UNITS)


def format_amount(amount: Decimal | int | str, currency: str) -> str:
    """The amount as a plain decimal string with at least the currency's minor-unit digits.

    Raises ValueError for values that are not finite numbers.
    """
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(amount)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ValueError(f"not a decimal amount: {amount!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    digits = minor_units(currency)
    # normalize() strips trailing zeros (12.5000 -> 12.5) so only significant extra digits remain.
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite values have an int exponent
    places = max(digits, -exponent)
    text = f"{value:.{places}f}"
    # "-0.00" reads like a debt; a zero amount has no sign.
    if value.is_zero() and text.startswith("-"):
        text = text[1:]
    return text
