"""The intent classifier: multinomial naive Bayes over word and character n-grams, in plain Python (pure).

Why not scikit-learn: the model is a few counts per feature; training on the 1,900-ticket set takes
about a second and prediction well under a millisecond here, so scikit-learn (with numpy and scipy,
~100 MB in the image) buys nothing the product needs. The model file is JSON, not a pickle: loading it
cannot execute code, and a diff shows what changed.

Features (what makes it robust to typos and mixed language): word unigrams and bigrams, and character
3- and 4-grams inside each word (a typo spoils one word but few of its n-grams), over `text.normalise`.
Scores are the length-normalised log-likelihood (mean per feature, unseen features counted in the
length with no weight, plus the log prior over the number of features), turned into a confidence by a
softmax with a sharpness `beta`; normalising by length keeps long tickets from being over-confident,
and `beta` is fitted on the validation split so that the confidence is calibrated (see
`shopstream support evaluate`). `alpha` (smoothing) and `beta` are chosen on the validation split only;
the test split is never seen by `train`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .text import normalise, words

MODEL_FILE = Path(__file__).resolve().parents[2] / "topology" / "support" / "intent_model.json"
ALPHAS = (0.03, 0.1, 0.3, 1.0)
BETAS = tuple(float(b) for b in range(1, 61))
#: Features seen fewer times than this in training are dropped (noise, and a smaller model file).
MIN_COUNT = 2


class ModelError(ValueError):
    """A model file that cannot be used; the message says why."""


def features(text: str) -> Counter[str]:
    """The n-gram counts of a ticket text."""
    tokens = words(normalise(text))
    found: Counter[str] = Counter()
    for i, tok in enumerate(tokens):
        found[f"w:{tok}"] += 1
        if i:
            found[f"b:{tokens[i - 1]}_{tok}"] += 1
        padded = f" {tok} "
        for n in (3, 4):
            for j in range(max(len(padded) - n + 1, 0)):
                found[f"c:{padded[j:j + n]}"] += 1
    return found


@dataclass(frozen=True)
class Prediction:
    """An intent with its confidence, and the model that said so."""

    intent: str
    confidence: float
    model_version: str
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class IntentModel:
    """A trained multinomial naive Bayes model (counts), with its smoothing and calibration."""

    classes: tuple[str, ...]
    class_docs: list[int]
    class_totals: list[int]
    counts: dict[str, dict[int, int]]
    alpha: float
    beta: float = 10.0
    trained_on: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def version(self) -> str:
        """`intent-nb-<hash>`: the same counts and parameters always have the same version."""
        if "version" not in self._cache:
            digest = hashlib.sha256(json.dumps(self._payload(), sort_keys=True).encode()).hexdigest()[:10]
            self._cache["version"] = f"intent-nb-{digest}"
        return str(self._cache["version"])

    def _tables(self) -> tuple[list[float], list[float], dict[str, list[float]]]:
        if "tables" not in self._cache:
            size = len(self.counts)
            docs = sum(self.class_docs)
            priors = [math.log(d / docs) for d in self.class_docs]
            unseen = [math.log(self.alpha / (t + self.alpha * size)) for t in self.class_totals]
            table = {feat: [math.log((per.get(c, 0) + self.alpha) / (self.class_totals[c] + self.alpha * size))
                            for c in range(len(self.classes))] for feat, per in self.counts.items()}
            self._cache["tables"] = (priors, unseen, table)
        return self._cache["tables"]

    def scores(self, text: str) -> list[float]:
        """Length-normalised log-likelihood per class (higher is likelier)."""
        priors, _unseen, table = self._tables()
        total = [0.0] * len(self.classes)
        n = 0
        for feat, count in features(text).items():
            # Unseen features count in the length but add nothing: a text the model mostly does not know
            # (gibberish, another language) gets scores close together, i.e. a low confidence.
            n += count
            row = table.get(feat)
            if row is None:
                continue
            for c, value in enumerate(row):
                total[c] += count * value
        n = max(n, 1)
        return [(t + p) / n for t, p in zip(total, priors, strict=True)]

    def predict(self, text: str, beta: float | None = None) -> Prediction:
        """The likeliest intent and its calibrated confidence."""
        probs = softmax(self.scores(text), self.beta if beta is None else beta)
        best = max(range(len(probs)), key=probs.__getitem__)
        return Prediction(intent=self.classes[best], confidence=probs[best], model_version=self.version,
                          scores={c: round(p, 4) for c, p in zip(self.classes, probs, strict=True)})

    def _payload(self) -> dict[str, Any]:
        return {"kind": "multinomial-nb", "classes": list(self.classes), "class_docs": self.class_docs,
                "class_totals": self.class_totals, "alpha": self.alpha, "beta": self.beta,
                "trained_on": self.trained_on,
                "counts": {f: [[c, n] for c, n in sorted(per.items())] for f, per in sorted(self.counts.items())}}

    def to_json(self) -> str:
        """The model file's text (version included, for people reading it)."""
        return json.dumps({"version": self.version, **self._payload()}, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> IntentModel:
        """A model from its file's text; ModelError when it is not one or its version does not match."""
        try:
            raw = json.loads(text)
            model = cls(classes=tuple(raw["classes"]), class_docs=list(raw["class_docs"]),
                        class_totals=list(raw["class_totals"]),
                        counts={f: {int(c): int(n) for c, n in pairs} for f, pairs in raw["counts"].items()},
                        alpha=float(raw["alpha"]), beta=float(raw["beta"]), trained_on=str(raw.get("trained_on", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"not an intent model file: {exc}") from None
        if raw.get("version") and raw["version"] != model.version:
            raise ModelError(f"model file says version {raw['version']} but its content is {model.version}")
        return model


def fit(texts: Sequence[str], labels: Sequence[str], classes: Sequence[str], alpha: float,
        beta: float = 10.0, trained_on: str = "") -> IntentModel:
    """Count features per class (features seen fewer than MIN_COUNT times are dropped)."""
    index = {c: i for i, c in enumerate(classes)}
    per_feature: dict[str, dict[int, int]] = {}
    docs = [0] * len(classes)
    for text, label in zip(texts, labels, strict=True):
        c = index[label]
        docs[c] += 1
        for feat, n in features(text).items():
            row = per_feature.setdefault(feat, {})
            row[c] = row.get(c, 0) + n
    kept = {f: row for f, row in per_feature.items() if sum(row.values()) >= MIN_COUNT}
    totals = [0] * len(classes)
    for row in kept.values():
        for c, n in row.items():
            totals[c] += n
    return IntentModel(classes=tuple(classes), class_docs=[max(d, 1) for d in docs], class_totals=totals,
                       counts=kept, alpha=alpha, beta=beta, trained_on=trained_on)


def softmax(raw: Sequence[float], beta: float) -> list[float]:
    """Probabilities from scores at sharpness `beta`."""
    top = max(raw)
    exps = [math.exp(beta * (s - top)) for s in raw]
    norm = sum(exps)
    return [e / norm for e in exps]


def log_loss(raw_scores: Sequence[Sequence[float]], truth: Sequence[int], beta: float) -> float:
    """Mean negative log-probability of the true classes (what `beta` is fitted to)."""
    total = 0.0
    for raw, c in zip(raw_scores, truth, strict=True):
        total -= math.log(max(softmax(raw, beta)[c], 1e-9))
    return total / max(len(truth), 1)


def load_model(path: Path | str | None = None) -> IntentModel:
    """The model file (default: the shipped one)."""
    target = Path(path) if path else MODEL_FILE
    try:
        return IntentModel.from_json(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{target}: cannot read the intent model: {exc.strerror or exc}") from None
