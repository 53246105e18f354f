#!/usr/bin/env python3
"""Container health check of the shopstream image: GET a URL on the loopback, healthy on a 2xx.

`shopstream-healthcheck [URL]`; without a URL it reads the admin port from the environment (the
variable named in ADMIN_PORT_ENV, default 9464) and asks `/readyz`. Exit 0 healthy, 1 unhealthy.
Standard library only: the final image has no curl or wget.
"""

from __future__ import annotations

import os
import sys
import urllib.request

# The one place the image names the admin-port variable (kept equal to the chart's and compose's).
ADMIN_PORT_ENV = "SHOPSTREAM_ADMIN_PORT"
DEFAULT_ADMIN_PORT = "9464"


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else (
        f"http://127.0.0.1:{os.environ.get(ADMIN_PORT_ENV, DEFAULT_ADMIN_PORT)}/readyz")
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if 200 <= response.status < 300 else 1
    except Exception as exc:  # any failure (refused, timeout, 5xx) is "unhealthy"
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
