"""The simulator's verdict: one row per check, rendered as a table or JSON (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    """One check: how many things were checked, how many did not match, a few examples."""

    check: str
    checked: int
    mismatches: int = 0
    examples: list[str] = field(default_factory=list)
    note: str = ""

    def miss(self, example: str) -> None:
        """Count one mismatch, keeping the first few examples."""
        self.mismatches += 1
        if len(self.examples) < 5:
            self.examples.append(example)


@dataclass
class Verdict:
    """Every check of a run, the faults injected and the ones skipped (with why)."""

    rows: list[Row] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    disruptions: list[dict[str, Any]] = field(default_factory=list)  # process faults (sim/chaos.py), as JSON

    @property
    def clean(self) -> bool:
        """No check found a mismatch."""
        return all(r.mismatches == 0 for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        """The verdict for machines (`--json`)."""
        return {"clean": self.clean, "rows": [asdict(r) for r in self.rows], "faults": self.faults,
                "skipped": self.skipped, "stats": self.stats, "disruptions": self.disruptions}

    def render(self) -> str:
        """The verdict table for people."""
        width = max([len(r.check) for r in self.rows] + [24])
        out = [f"{'check':<{width}}  {'checked':>8}  {'mismatches':>10}  note",
               f"{'-' * width}  {'-' * 8}  {'-' * 10}  ----"]
        for r in self.rows:
            out.append(f"{r.check:<{width}}  {r.checked:>8}  {r.mismatches:>10}  {r.note}")
            out += [f"{'':<{width}}    e.g. {e}" for e in r.examples]
        if self.faults:
            out.append("faults injected: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.faults.items())))
        for d in self.disruptions:
            out.append(f"fault {d['text']}")
        for kind, why in sorted(self.skipped.items()):
            out.append(f"fault {kind} SKIPPED: {why}")
        out.append("VERDICT: " + ("clean (0 mismatches)" if self.clean
                                  else f"{sum(r.mismatches for r in self.rows)} mismatch(es)"))
        return "\n".join(out)
