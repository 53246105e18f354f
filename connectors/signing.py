"""HMAC-SHA256 signatures of webhook bodies: computing and checking them (pure: no I/O).

Sources sign the raw body with a shared secret; they differ only in the encoding (Shopify and
WooCommerce: base64; Stripe, carrier, returns and ERP: hex) and in what is signed (Stripe and the
shopstream scheme prefix a timestamp). The connectors name their scheme; the arithmetic, the parsing of
signature headers and the constant-time comparison live here.

Hostile input: a signature header is ASCII or it does not match (no `int()` of Unicode digits, no
`compare_digest` of non-ASCII text); a timestamp is at most 11 ASCII digits. Every check takes a list of
secrets (rotation: the new one and the ones being retired, all compared, none short-circuited).

The scheme of the sources shopstream defines (carrier, returns, ERP): `X-Shopstream-Signature:
t=<unix seconds>,v1=<hex>` where `v1` is the hex HMAC-SHA256 of `f"{t}." + raw body` (Stripe's scheme;
several `v1` may be sent during a rotation), `t` within the tolerance of now. The untimed legacy form
(bare hex HMAC of the body, optional `sha256=` prefix) is accepted only behind
`SHOPSTREAM_SIGNATURE_ACCEPT_LEGACY`. `X-Shopstream-Delivery-Id` is the sender's delivery id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence

from shopstream.connectors.base import lower_headers

SHOPSTREAM_SIGNATURE_HEADER = "x-shopstream-signature"
SHOPSTREAM_DELIVERY_ID_HEADER = "x-shopstream-delivery-id"
DEFAULT_TOLERANCE_S = 300
#: Unix seconds fit in 11 digits until the year 5138; anything longer is an attack on `int()`.
MAX_TIMESTAMP_DIGITS = 11
#: A secret setting: one secret, or several while one is being rotated out.
Secrets = str | Sequence[str]


def secrets_of(secrets: Secrets) -> list[str]:
    """The non-empty secrets of `secrets` (a str may be comma-separated: `new,old`)."""
    items = secrets.split(",") if isinstance(secrets, str) else list(secrets)
    return [s.strip() for s in items if s and s.strip()]


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    """Hex HMAC-SHA256 of `message` under `secret`."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hmac_sha256_base64(secret: str, message: bytes) -> str:
    """Base64 HMAC-SHA256 of `message` under `secret`."""
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    """Compare secrets without leaking their length of common prefix through timing (non-ASCII: False)."""
    if (isinstance(a, str) and not a.isascii()) or (isinstance(b, str) and not b.isascii()):
        return False
    return hmac.compare_digest(a.encode() if isinstance(a, str) else a, b.encode() if isinstance(b, str) else b)


def any_signed(secrets: Secrets, candidates: Sequence[str], message: bytes,
               sign: Callable[[str, bytes], str]) -> bool:
    """True when some candidate is `sign(secret, message)` for some non-empty secret; every pair is compared
    (no early exit), so timing tells neither which secret nor which candidate matched."""
    keys = secrets_of(secrets)
    matches = [constant_time_equal(sign(key, message), given) for key in keys for given in candidates if given]
    return any(matches)


def signed_by(secrets: Secrets, given: str, body: bytes, sign: Callable[[str, bytes], str]) -> bool:
    """True when `given` is `sign(secret, body)` under one of the non-empty `secrets` (an empty key would be an
    HMAC anyone can compute), compared in constant time."""
    return bool(given) and any_signed(secrets, [given], body, sign)


def unix_seconds(text: str) -> int | None:
    """`text` as unix seconds when it is 1-11 ASCII digits; None otherwise (no Unicode digits, no huge ints)."""
    text = text.strip()
    if not text or len(text) > MAX_TIMESTAMP_DIGITS or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def parse_timed_signature(header: str) -> tuple[int, list[str]] | None:
    """`t=<seconds>,v1=<hex>[,v1=…]` as (t, the v1 values); None when malformed, non-ASCII or ambiguous."""
    if not header or not header.isascii() or len(header) > 4096:
        return None
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if timestamp is not None:
                return None  # two timestamps: refuse rather than guess
            timestamp = unix_seconds(value)
            if timestamp is None:
                return None
        elif key == "v1" and value:
            candidates.append(value.strip().lower())  # hex: any case
    if timestamp is None or not candidates:
        return None
    return timestamp, candidates


def timed_signature_valid(secrets: Secrets, header: str, body: bytes, *, now: float, tolerance_s: float) -> bool:
    """True when `header` (`t=…,v1=…`) signs `f"{t}." + body` under one of `secrets` and `t` is within
    `tolerance_s` of `now` in either direction (old: a replay; far ahead: a broken clock)."""
    parsed = parse_timed_signature(header)
    if parsed is None:
        return False
    timestamp, candidates = parsed
    if abs(now - timestamp) > tolerance_s:
        return False
    return any_signed(secrets, candidates, f"{timestamp}.".encode() + body, hmac_sha256_hex)


def shopstream_sign(secret: str, body: bytes) -> str:
    """The legacy (untimed) `X-Shopstream-Signature` value for `body`: hex HMAC-SHA256 with the secret."""
    return hmac_sha256_hex(secret, body)


def shopstream_signature(secrets: Secrets, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Shopstream-Signature` value for `body` signed at `timestamp` (now when None), one `v1` per secret."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={hmac_sha256_hex(k, f'{t}.'.encode() + body)}" for k in secrets_of(secrets))])


def shopstream_signature_valid(secrets: Secrets, headers: Mapping[str, str], body: bytes, *,
                               now: float | None = None, tolerance_s: float = DEFAULT_TOLERANCE_S,
                               accept_legacy: bool = False) -> bool:
    """True when `X-Shopstream-Signature` signs `body` under one of `secrets` (timed form; the bare hex form
    too when `accept_legacy`)."""
    given = lower_headers(headers).get(SHOPSTREAM_SIGNATURE_HEADER, "").strip()
    if given.startswith("t="):
        return timed_signature_valid(secrets, given, body, now=time.time() if now is None else now,
                                     tolerance_s=tolerance_s)
    if not accept_legacy:
        return False
    return signed_by(secrets, given.lower().removeprefix("sha256="), body, shopstream_sign)


def shopstream_delivery_id(headers: Mapping[str, str]) -> str | None:
    """The sender's `X-Shopstream-Delivery-Id` (the same on every retry), if it sent one."""
    value = lower_headers(headers).get(SHOPSTREAM_DELIVERY_ID_HEADER, "").strip()
    return value or None


def shopstream_headers(secret: Secrets, body: bytes, delivery_id: str | None = None, *,
                       timestamp: int | None = None) -> dict[str, str]:
    """The headers a sender of the shopstream scheme sends with `body`: JSON, signed now, with its delivery id."""
    headers = {"Content-Type": "application/json",
               "X-Shopstream-Signature": shopstream_signature(secret, body, timestamp)}
    if delivery_id:
        headers["X-Shopstream-Delivery-Id"] = delivery_id
    return headers


class ShopstreamSigned:
    """`verify` and `delivery_id` of a source connector on the shopstream scheme (carrier, returns, ERP)."""

    #: Request headers a parked body keeps: what `verify` and `delivery_id` read again on a redrive.
    kept_headers: tuple[str, ...] = (SHOPSTREAM_SIGNATURE_HEADER, SHOPSTREAM_DELIVERY_ID_HEADER)

    def __init__(self, secret: Secrets, *, now: Callable[[], float] = time.time,
                 tolerance_s: float = DEFAULT_TOLERANCE_S, accept_legacy: bool = False) -> None:
        self._secret = secrets_of(secret)
        self._now = now
        self._tolerance_s = tolerance_s
        self._accept_legacy = accept_legacy

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        return shopstream_signature_valid(self._secret, headers, body, now=self._now(),
                                          tolerance_s=self._tolerance_s, accept_legacy=self._accept_legacy)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return shopstream_delivery_id(headers)
