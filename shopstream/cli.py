"""The `shopstream` command line (placeholder until the verbs are wired)."""

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `shopstream` console script."""
    print("shopstream: no command yet", file=sys.stderr)
    return 2
