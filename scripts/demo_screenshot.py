#!/usr/bin/env python3
"""Render a `shopstream demo` HTML report with headless Chromium (Debian's `chromium`) into a PNG.

Usage: scripts/demo_screenshot.py REPORT.html [OUT.png]   (default OUT: docs/demo-report.png)
The README's screenshot is made this way from a real `shopstream demo --report …` run, never by hand.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def chromium() -> str | None:
    """The headless browser's executable, if one is installed."""
    return next((p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))), None)


def screenshot(report: Path, out: Path, width: int = 1200, height: int = 1800) -> None:
    """Render `report` at `width` x `height` CSS pixels into `out` (PNG)."""
    exe = chromium()
    if exe is None:
        raise SystemExit("no chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={out.resolve()}", report.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    target = Path(sys.argv[2] if len(sys.argv) == 3 else "docs/demo-report.png")
    screenshot(Path(sys.argv[1]), target)
    print(target)
