"""`shopstream support evaluate|train`: the intent model's report card and its rebuild (CLI faces of the core).

- `evaluate [--dataset FILE] [--model FILE]`: the shipped dataset's test split (never used for training
  or for choosing hyperparameters), or every row of a foreign labelled file; prints accuracy and macro-F1
  overall and per language, per-intent precision/recall/F1, the confusion matrix and the calibration.
  Exit 0; 2 when a file cannot be read.
- `train [--dataset FILE] [--output FILE] [--regenerate]`: choose alpha and beta on validation, refit on
  train + validation, write the versioned model file (default: the shipped one) and print the test
  report. `--regenerate` first rewrites the dataset from the phrase bank (deterministic seed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import dataset
from .evaluate import evaluate, train
from .model import MODEL_FILE, ModelError, load_model


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print the held-out report of a model."""
    try:
        model = load_model(args.model)
        rows = dataset.load(args.dataset or dataset.DATASET_FILE)
    except (ModelError, OSError, ValueError) as exc:
        print(f"shopstream support evaluate: {exc}", file=sys.stderr)
        return 2
    test = rows if args.dataset else [e for e in rows if e.split == "test"]
    what = f"{args.dataset} (all {len(test)} rows)" if args.dataset else f"test split of {dataset.DATASET_FILE.name}"
    print(f"evaluating on {what}; model trained on: {model.trained_on}")
    print(evaluate(model, test).render())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Rebuild the model file from the dataset's train and validation splits."""
    path = Path(args.dataset) if args.dataset else dataset.DATASET_FILE
    if args.regenerate:
        dataset.write(dataset.generate(), path)
        print(f"regenerated {path}")
    try:
        rows = dataset.load(path)
        model, report = train(rows)
    except (OSError, ValueError) as exc:
        print(f"shopstream support train: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output) if args.output else MODEL_FILE
    out.write_text(model.to_json(), encoding="utf-8")
    accuracy = ", ".join(f"alpha {a}: {v:.3f}" for a, v in report.validation_accuracy.items())
    print(f"validation accuracy by alpha: {accuracy}")
    print(f"chose alpha {report.alpha}, beta {report.beta} (validation log loss {report.validation_log_loss:.3f})")
    print(f"wrote {out}: {model.version} ({len(model.counts)} features, "
          f"{report.train_size + report.validation_size} tickets)")
    print(evaluate(model, [e for e in rows if e.split == "test"]).render())
    return 0


def add_support_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`shopstream support evaluate|train`."""
    s = sub.add_parser("support", help="support triage model: evaluate on held-out tickets, or retrain")
    ssub = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = ssub.add_parser("evaluate", help="accuracy, macro-F1 per language, confusion, calibration on held-out data")
    p.add_argument("--dataset", metavar="FILE", help="labelled JSON lines (default: the shipped test split)")
    p.add_argument("--model", metavar="FILE", help="model file (default: the shipped one)")
    p.set_defaults(func=lambda args, _settings: cmd_evaluate(args))
    p = ssub.add_parser("train", help="rebuild the versioned model file from the train and validation splits")
    p.add_argument("--dataset", metavar="FILE", help="labelled JSON lines with splits (default: the shipped one)")
    p.add_argument("--output", metavar="FILE", help="model file to write (default: the shipped one)")
    p.add_argument("--regenerate", action="store_true", help="rewrite the dataset from the phrase bank first")
    p.set_defaults(func=lambda args, _settings: cmd_train(args))
