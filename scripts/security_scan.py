"""checkov over the rendered chart (default and ci/production-values.yaml) and the Dockerfile.

Every failed check must be justified in helm/shopstream/SECURITY-FINDINGS.md (its check id in a
`## CKV_…` heading); the script exits 1 on any other finding. checkov is not a dev dependency (it
pulls ~150 packages and takes ~20 s per run), so it runs from its own virtualenv:

    python3 -m venv /tmp/checkov && /tmp/checkov/bin/pip install checkov
    CHECKOV=/tmp/checkov/bin/checkov .venv/bin/python scripts/security_scan.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "shopstream"
CONNECTION = {"kafka": {"bootstrapServers": "kafka:9092"}, "schemaRegistry": {"url": "http://schema-registry:8081"},
              "redis": {"url": "redis://redis:6379/0"}, "secrets": {"existingSecret": "shopstream-webhooks"}}


def main() -> int:
    checkov = os.environ.get("CHECKOV", "checkov")
    justified = set(re.findall(r"^## (CKV2?_[A-Z0-9_]+)", (CHART / "SECURITY-FINDINGS.md").read_text(), re.M))
    chart = helm.Chart.load(str(CHART))
    production = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())
    failed: dict[str, list[str]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for name, values in (("default", CONNECTION), ("production", production)):
            (Path(tmp) / name).mkdir()
            for path, text in chart.render(values, name="shop", namespace="shop").items():
                if path.endswith(".yaml") and text.strip():
                    (Path(tmp) / name / Path(path).name).write_text(text)
        totals = {}
        for label, args in (("manifests", ["-d", tmp, "--framework", "kubernetes"]),
                            ("Dockerfile", ["-f", str(ROOT / "Dockerfile"), "--framework", "dockerfile"])):
            out = subprocess.run([checkov, *args, "--quiet", "--compact", "-o", "json"],
                                 capture_output=True, text=True, cwd=tmp)
            report = json.loads(out.stdout)
            report = report if isinstance(report, dict) else {"summary": {"passed": 0, "failed": 0}, "results": {}}
            totals[label] = report["summary"]
            for f in report.get("results", {}).get("failed_checks", []):
                failed[f["check_id"]].append(f"{f['file_path']} {f['resource']}")
    for label, summary in totals.items():
        print(f"checkov {label}: passed {summary['passed']}, failed {summary['failed']}")
    unjustified = {k: v for k, v in failed.items() if k not in justified}
    for check, where in sorted(failed.items()):
        print(f"{check} ({'justified' if check in justified else 'NOT JUSTIFIED'}): {len(where)}")
        for w in where:
            print(f"    {w}")
    return 1 if unjustified else 0


if __name__ == "__main__":
    sys.exit(main())
