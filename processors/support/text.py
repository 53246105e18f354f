"""Reading a ticket's text by rules: language, order numbers, tracking numbers, e-mails, masked IBANs (pure).

Everything here is deterministic and explainable; the intent comes from the trained model
(`model.py`), which reads the same normalised text.

- Language: `de` or `en` by counting frequent function words of each (plus umlauts/ß for German);
  the helpdesk's own language field wins when it sent one (`detect_language(text, hint)`).
- Order numbers in the shop's formats: `#1001`, `Bestellung 1001`, `Bestellnummer: 1001`,
  `Bestell-Nr. 1001`, `order 1001`, `order no. 1001`, `order number #1001`, `Auftrag 1001`; 3 to 12 digits,
  optionally with a shop prefix like `SO-1001`. A bare number is never taken (it may be a phone number,
  a postcode or an amount).
- Tracking numbers: UPS `1Z…` (18), DHL (JJD…, or 12/20 digits after a parcel word), and generic
  long alphanumerics after `tracking`/`Sendungsnummer`.
- IBAN-like strings (`DE89 3704 0044 0532 0130 00`) are masked to `DE89…3000` in every text the
  product keeps or shows beyond the ticket itself (drafts, work items, evidence).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_DE_WORDS = frozenset(["ich", "und", "nicht", "meine", "mein", "meiner", "ist", "wo", "bitte", "danke", "der", "die",
                       "das", "ein", "eine", "noch", "habe", "hallo", "wurde", "wann", "bestellung", "lieferung",
                       "sie", "ihr", "mir", "mich", "bei", "mit", "auf", "für", "kann", "können", "schon", "leider",
                       "zurück", "geld", "rechnung", "adresse", "keine", "kein"])
_EN_WORDS = frozenset(["i", "and", "not", "my", "is", "where", "please", "thanks", "thank", "the", "a", "an", "still",
                       "have", "hello", "hi", "was", "when", "order", "delivery", "you", "your", "me", "with", "on",
                       "for", "can", "could", "already", "unfortunately", "back", "money", "invoice", "address", "no",
                       "yet"])

_ORDER_WORDS = (r"(?:bestell(?:ung|nummer|nr\.?|-?nr\.?)?|auftrag(?:snummer)?"
                r"|order(?:\s*(?:no\.?|nr\.?|number|#|id))?|commande)")
_ORDER_RE = re.compile(rf"(?:\b{_ORDER_WORDS}\s*[:#.]?\s*#?\s*|#)((?:[A-Z]{{2,4}}-)?\d{{3,12}})\b", re.IGNORECASE)
_UPS_RE = re.compile(r"\b1Z[0-9A-Z]{16}\b", re.IGNORECASE)
_DHL_RE = re.compile(r"\bJJD\d{10,20}\b", re.IGNORECASE)
_TRACKING_WORD_RE = re.compile(
    r"(?:tracking(?:\s*(?:number|no\.?|nr\.?|id))?|sendungs(?:nummer|nr\.?)|paketnummer|trackingnummer)"
    r"\s*[:#]?\s*([0-9A-Z]{10,30})\b", re.IGNORECASE)
_EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_IBAN_RE = re.compile(r"\b([A-Z]{2}\d{2})((?:\s?[0-9A-Z]{4}){3,7})(\s?[0-9A-Z]{1,4})?\b")


@dataclass(frozen=True)
class Entities:
    """What the rules found in a ticket."""

    order_numbers: tuple[str, ...] = ()
    tracking_numbers: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    ibans_masked: tuple[str, ...] = ()


def normalise(text: str) -> str:
    """Lower case, NFC, whitespace collapsed (what both the rules and the model read)."""
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def words(text: str) -> list[str]:
    """Word tokens of normalised text (letters and digits, umlauts kept)."""
    return re.findall(r"[a-zäöüß0-9]+", normalise(text))


def detect_language(text: str, hint: str | None = None) -> str:
    """`de` or `en`: the helpdesk's hint when it is one of them, else the function-word vote (ties: de)."""
    if hint and hint.lower()[:2] in ("de", "en"):
        return hint.lower()[:2]
    tokens = words(text)
    german = sum(t in _DE_WORDS for t in tokens) + 2 * sum(ch in "äöüß" for ch in text.lower())
    english = sum(t in _EN_WORDS for t in tokens)
    return "en" if english > german else "de"


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def mask_ibans(text: str) -> str:
    """Every IBAN-like string as country+check digits, an ellipsis and its last four characters."""
    def masked(match: re.Match[str]) -> str:
        tail = re.sub(r"\s", "", match.group(0))[-4:]
        return f"{match.group(1)}…{tail}"
    return _IBAN_RE.sub(masked, text)


def extract(text: str) -> Entities:
    """Order numbers, tracking numbers, e-mails and masked IBANs found in `text`, in order of appearance."""
    ibans = [mask_ibans(m.group(0)) for m in _IBAN_RE.finditer(text)]
    clean = _IBAN_RE.sub(" ", text)  # an IBAN's digits are never an order number
    tracking = [m.group(0).upper() for m in _UPS_RE.finditer(clean)] + [m.group(0).upper()
                                                                       for m in _DHL_RE.finditer(clean)]
    tracking += [m.group(1).upper() for m in _TRACKING_WORD_RE.finditer(clean)
                 if any(ch.isdigit() for ch in m.group(1))]
    orders = [m.group(1).upper() for m in _ORDER_RE.finditer(clean)]
    orders = [o for o in orders if not any(o in t for t in tracking)]
    return Entities(order_numbers=_unique(orders), tracking_numbers=_unique(tracking),
                    emails=_unique([m.group(0).lower() for m in _EMAIL_RE.finditer(clean)]),
                    ibans_masked=_unique(ibans))
