"""Mask customer PII in text that leaves the record: error messages, stack traces and log lines.

The DLQ keeps the original record bytes untouched (an operator may need them to replay), but the
context headers and logs are read by many more people and tools, so they carry no e-mail addresses,
phone numbers, names or addresses. Masking keeps enough to correlate (`j***@example.com`).
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
#: International-format numbers only: bare digit runs are order ids, SKUs and dates operators need.
_PHONE = re.compile(r"(?<![\w+])\+\d[\d ()/-]{6,}\d")
#: JSON or repr style `"key": "value"` / `'key': 'value'` / `key='value'` pairs whose value is PII.
_PII_KEYS = ("name", "first_name", "last_name", "full_name", "email", "phone", "address", "address1",
             "address2", "line1", "line2", "street", "city", "zip", "postal_code", "company")
_KEYS = "|".join(_PII_KEYS)
_PAIR = re.compile(
    rf"""(?P<key>["']?(?:{_KEYS})["']?\s*[:=]\s*)(?P<q>["'])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)""",
    re.IGNORECASE)


def mask(text: str) -> str:
    """`text` with e-mail addresses, phone numbers and PII-named fields masked."""
    text = _PAIR.sub(lambda m: f"{m['key']}{m['q']}***{m['q']}", text)
    text = _EMAIL.sub(lambda m: f"{m[1]}***@{m[2]}", text)
    return _PHONE.sub("***", text)
