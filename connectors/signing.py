"""HMAC-SHA256 signatures of webhook bodies: computing and checking them (pure: no I/O).

Sources sign the raw body with a shared secret; they differ only in the encoding (Shopify and
WooCommerce: base64; Stripe, carrier, returns and ERP: hex) and in what is signed (Stripe prefixes the
timestamp). The connectors name their scheme; the arithmetic and the constant-time comparison live here.

The scheme of the sources shopstream defines (carrier, returns, ERP): `X-Shopstream-Signature` is the
hex HMAC-SHA256 of the raw body (an optional `sha256=` prefix is accepted), `X-Shopstream-Delivery-Id`
the sender's delivery id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping

from shopstream.connectors.base import lower_headers

SHOPSTREAM_SIGNATURE_HEADER = "x-shopstream-signature"
SHOPSTREAM_DELIVERY_ID_HEADER = "x-shopstream-delivery-id"


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    """Hex HMAC-SHA256 of `message` under `secret`."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hmac_sha256_base64(secret: str, message: bytes) -> str:
    """Base64 HMAC-SHA256 of `message` under `secret`."""
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    """Compare secrets without leaking their length of common prefix through timing."""
    return hmac.compare_digest(a.encode() if isinstance(a, str) else a, b.encode() if isinstance(b, str) else b)


def signed_by(secret: str, given: str, body: bytes, sign: Callable[[str, bytes], str]) -> bool:
    """True when `given` is `sign(secret, body)` under a non-empty `secret` (an empty key would be an HMAC
    anyone can compute), compared in constant time."""
    return bool(secret) and bool(given) and constant_time_equal(sign(secret, body), given)


def shopstream_sign(secret: str, body: bytes) -> str:
    """The `X-Shopstream-Signature` value for `body`: hex HMAC-SHA256 with the shared secret."""
    return hmac_sha256_hex(secret, body)


def shopstream_signature_valid(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """True when `X-Shopstream-Signature` is the HMAC of `body` under a non-empty `secret`."""
    given = lower_headers(headers).get(SHOPSTREAM_SIGNATURE_HEADER, "").strip().lower().removeprefix("sha256=")
    return signed_by(secret, given, body, shopstream_sign)


def shopstream_delivery_id(headers: Mapping[str, str]) -> str | None:
    """The sender's `X-Shopstream-Delivery-Id` (the same on every retry), if it sent one."""
    value = lower_headers(headers).get(SHOPSTREAM_DELIVERY_ID_HEADER, "").strip()
    return value or None


def shopstream_headers(secret: str, body: bytes, delivery_id: str | None = None) -> dict[str, str]:
    """The headers a sender of the shopstream scheme sends with `body`: JSON, signed, with its delivery id."""
    headers = {"Content-Type": "application/json", "X-Shopstream-Signature": shopstream_sign(secret, body)}
    if delivery_id:
        headers["X-Shopstream-Delivery-Id"] = delivery_id
    return headers


class ShopstreamSigned:
    """`verify` and `delivery_id` of a source connector on the shopstream scheme (carrier, returns, ERP)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        return shopstream_signature_valid(self._secret, headers, body)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return shopstream_delivery_id(headers)
