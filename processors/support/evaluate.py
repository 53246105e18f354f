"""Training and evaluating the intent model: `shopstream support train|evaluate` (pure but for file I/O).

`train`: for each smoothing `alpha`, fit on the train split and score the validation split; keep the
most accurate alpha, fit the confidence sharpness `beta` to the validation split's log loss, then refit
the counts on train + validation with those two. The test split is read by `evaluate` only.

`evaluate`: on the test split (or every row of a foreign `--dataset` file): accuracy and macro-F1,
overall and per language; precision, recall and F1 per intent; the confusion matrix; and calibration:
per confidence bin the mean confidence against the accuracy, and the expected calibration error (ECE,
the bin-weighted gap). A well-calibrated model's 0.9-confidence tickets are right about 90 % of the time,
which is what the automation policy's thresholds rely on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from .dataset import INTENTS, Example
from .model import ALPHAS, BETAS, IntentModel, fit, log_loss, softmax

BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001)


@dataclass(frozen=True)
class TrainReport:
    """What training chose and why."""

    alpha: float
    beta: float
    validation_accuracy: dict[float, float]
    validation_log_loss: float
    train_size: int
    validation_size: int


def dataset_digest(examples: Sequence[Example]) -> str:
    """A short hash of the labelled texts (recorded in the model: what it was trained on)."""
    h = hashlib.sha256()
    for e in examples:
        h.update(f"{e.split}\t{e.intent}\t{e.text}\n".encode())
    return h.hexdigest()[:12]


def train(examples: Sequence[Example]) -> tuple[IntentModel, TrainReport]:
    """Choose alpha and beta on validation, refit on train + validation; the test split is not touched."""
    tr = [e for e in examples if e.split == "train"]
    va = [e for e in examples if e.split == "validation"]
    if not tr or not va:
        raise ValueError("the dataset needs train and validation rows")
    index = {c: i for i, c in enumerate(INTENTS)}
    truth = [index[e.intent] for e in va]
    accuracy: dict[float, float] = {}
    raw_by_alpha: dict[float, list[list[float]]] = {}
    for alpha in ALPHAS:
        model = fit([e.text for e in tr], [e.intent for e in tr], INTENTS, alpha)
        raw = [model.scores(e.text) for e in va]
        raw_by_alpha[alpha] = raw
        right = sum(max(range(len(r)), key=r.__getitem__) == t for r, t in zip(raw, truth, strict=True))
        accuracy[alpha] = right / len(va)
    alpha = max(ALPHAS, key=lambda a: (accuracy[a], -a))
    losses = {b: log_loss(raw_by_alpha[alpha], truth, b) for b in BETAS}
    beta = min(BETAS, key=losses.__getitem__)
    both = tr + va
    final = fit([e.text for e in both], [e.intent for e in both], INTENTS, alpha, beta,
                trained_on=f"dataset {dataset_digest(examples)}, splits train+validation ({len(both)} tickets)")
    return final, TrainReport(alpha=alpha, beta=beta, validation_accuracy=accuracy,
                              validation_log_loss=losses[beta], train_size=len(tr), validation_size=len(va))


@dataclass
class Scores:
    """Accuracy and macro-F1 of a set of predictions."""

    accuracy: float
    macro_f1: float
    count: int


@dataclass
class Report:
    """Everything `shopstream support evaluate` prints."""

    model_version: str
    overall: Scores
    per_language: dict[str, Scores]
    per_class: dict[str, tuple[float, float, float, int]]  # precision, recall, f1, support
    confusion: dict[str, dict[str, int]]
    calibration: list[tuple[float, float, float, int]] = field(default_factory=list)  # lo, conf, acc, n
    ece: float = 0.0

    def render(self) -> str:
        """The report as text."""
        lines = [f"model {self.model_version}",
                 f"overall: accuracy {self.overall.accuracy:.3f}  macro-F1 {self.overall.macro_f1:.3f}  "
                 f"({self.overall.count} tickets)"]
        for lang, s in sorted(self.per_language.items()):
            lines.append(f"  {lang}: accuracy {s.accuracy:.3f}  macro-F1 {s.macro_f1:.3f}  ({s.count} tickets)")
        lines.append(f"\n{'intent':<24}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>5}")
        for c, (p, r, f, n) in self.per_class.items():
            lines.append(f"{c:<24}{p:>10.3f}{r:>8.3f}{f:>7.3f}{n:>5}")
        short = [c[:5] for c in INTENTS]
        lines.append("\nconfusion (rows: true, columns: predicted)")
        lines.append(" " * 24 + "".join(f"{s:>6}" for s in short))
        for c in INTENTS:
            lines.append(f"{c:<24}" + "".join(f"{self.confusion[c][p]:>6}" for p in INTENTS))
        lines.append("\ncalibration (confidence bin: mean confidence vs accuracy)")
        for lo, conf, acc, n in self.calibration:
            lines.append(f"  >= {lo:.2f}: confidence {conf:.3f}  accuracy {acc:.3f}  n={n}")
        lines.append(f"  expected calibration error (ECE): {self.ece:.3f}")
        return "\n".join(lines)


def _scores(pairs: Sequence[tuple[str, str]]) -> tuple[Scores, dict[str, tuple[float, float, float, int]]]:
    per: dict[str, tuple[float, float, float, int]] = {}
    for c in INTENTS:
        tp = sum(t == c and p == c for t, p in pairs)
        fp = sum(t != c and p == c for t, p in pairs)
        fn = sum(t == c and p != c for t, p in pairs)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[c] = (prec, rec, f1, tp + fn)
    present = [c for c in INTENTS if per[c][3]]
    macro = sum(per[c][2] for c in present) / max(len(present), 1)
    acc = sum(t == p for t, p in pairs) / max(len(pairs), 1)
    return Scores(accuracy=acc, macro_f1=macro, count=len(pairs)), per


def evaluate(model: IntentModel, examples: Sequence[Example]) -> Report:
    """Metrics of `model` on `examples` (pass the test split)."""
    rows = []
    for e in examples:
        probs = softmax(model.scores(e.text), model.beta)
        best = max(range(len(probs)), key=probs.__getitem__)
        rows.append((e, model.classes[best], probs[best]))
    overall, per_class = _scores([(e.intent, p) for e, p, _ in rows])
    per_language = {lang: _scores([(e.intent, p) for e, p, _ in rows if e.language == lang])[0]
                    for lang in sorted({e.language for e, _, _ in rows})}
    confusion = {c: dict.fromkeys(INTENTS, 0) for c in INTENTS}
    for e, p, _ in rows:
        confusion[e.intent][p] += 1
    calibration, ece = [], 0.0
    for lo, hi in pairwise(BINS):
        inside = [(e.intent == p, conf) for e, p, conf in rows if lo <= conf < hi]
        if not inside:
            continue
        conf = sum(c for _, c in inside) / len(inside)
        acc = sum(ok for ok, _ in inside) / len(inside)
        calibration.append((lo, conf, acc, len(inside)))
        ece += len(inside) / len(rows) * abs(conf - acc)
    return Report(model_version=model.version, overall=overall, per_language=per_language, per_class=per_class,
                  confusion=confusion, calibration=calibration, ece=ece)
