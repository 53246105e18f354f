"""The labelled German/English ticket dataset: how it is made, written and read (pure but for file I/O).

How it was made (say it plainly: these are synthetic tickets, not customer data): `generate(seed)`
composes each ticket from the phrase bank in `phrases.py` — an optional greeting, one core phrasing of
the intent, an optional detail sentence, an optional closing — with an order reference in one of the
shop's formats, a product, and noise: typos (swapped, dropped or doubled letters in 35 % of tickets),
mixed language (greeting, detail or closing from the other language in 12 %), all-lower-case or
SHOUTED text, and bare one-liners. 95 tickets per intent and language: 1,900 tickets.

Splits are by *phrasing*, not by ticket: core phrasings 0-4 are train, 5 is validation (the only data
hyperparameters are chosen on), 6-7 are test. The test split therefore contains wordings the model
never saw, which is harder and more honest than a random split of template-made tickets (a random split
would share every phrasing between train and test and report near-perfect numbers). Real tickets will
still differ more; re-label production tickets and re-run `shopstream support evaluate --dataset`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import phrases

#: The intent labels (issue 15), in a fixed order (the confusion matrix's rows).
INTENTS: tuple[str, ...] = ("where_is_my_order", "return_request", "refund_status", "invoice_request",
                            "address_change", "cancel_order", "damaged_or_wrong_item", "payment_problem",
                            "product_question", "other")
PER_INTENT_AND_LANGUAGE = 95
DEFAULT_SEED = 20261206
DATASET_FILE = Path(__file__).resolve().parents[2] / "topology" / "support" / "tickets.jsonl"


@dataclass(frozen=True)
class Example:
    """One labelled ticket."""

    id: str
    text: str
    intent: str
    language: str
    split: str  # train | validation | test
    phrase: int


def _split(phrase: int) -> str:
    if phrase in phrases.TEST_PHRASES:
        return "test"
    return "validation" if phrase in phrases.VALIDATION_PHRASES else "train"


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def _noisy(text: str, rng: random.Random) -> str:
    tokens = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        j = rng.randrange(len(tokens))
        tokens[j] = _typo(tokens[j], rng)
    return " ".join(tokens)


def _ticket(intent: str, lang: str, phrase: int, rng: random.Random) -> str:
    other = "en" if lang == "de" else "de"
    mixed = rng.random() < 0.12
    def pick_lang() -> str:
        return other if mixed and rng.random() < 0.5 else lang
    ref = rng.choice(phrases.ORDER_REFS[lang]).format(n=rng.randint(1000, 99999))
    core = phrases.CORE[intent][lang][phrase].format(o=ref, p=rng.choice(phrases.PRODUCTS[lang]), t="")
    core = core[0].upper() + core[1:]
    if rng.random() < 0.15:  # a bare one-liner
        parts = [core]
    else:
        parts = [rng.choice(phrases.GREETINGS[pick_lang()]), core]
        if rng.random() < 0.5:
            parts.append(rng.choice(phrases.DETAILS[intent][pick_lang()]))
        parts.append(rng.choice(phrases.CLOSINGS[pick_lang()]))
    text = " ".join(p for p in parts if p)
    if rng.random() < 0.35:
        text = _noisy(text, rng)
    roll = rng.random()
    if roll < 0.10:
        text = text.lower()
    elif roll < 0.13:
        text = text.upper()
    return text


def generate(seed: int = DEFAULT_SEED, per_intent_and_language: int = PER_INTENT_AND_LANGUAGE) -> list[Example]:
    """The whole dataset, deterministic for a seed."""
    rng = random.Random(seed)
    examples: list[Example] = []
    for intent in INTENTS:
        for lang in ("de", "en"):
            count = len(phrases.CORE[intent][lang])
            for n in range(per_intent_and_language):
                phrase = n % count  # every phrasing equally often
                examples.append(Example(id=f"{intent}-{lang}-{n:03d}", text=_ticket(intent, lang, phrase, rng),
                                        intent=intent, language=lang, split=_split(phrase), phrase=phrase))
    return examples


def write(examples: Iterable[Example], path: Path = DATASET_FILE) -> Path:
    """The examples as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")
    return path


def load(path: Path | str = DATASET_FILE) -> list[Example]:
    """The examples of a JSON-lines file (`split` defaults to test: a foreign file is evaluation data)."""
    result = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        if raw.get("intent") not in INTENTS:
            raise ValueError(f"{path}:{n}: unknown intent {raw.get('intent')!r}")
        result.append(Example(id=str(raw.get("id", n)), text=str(raw["text"]), intent=raw["intent"],
                              language=str(raw.get("language", "")), split=str(raw.get("split", "test")),
                              phrase=int(raw.get("phrase", -1))))
    return result
