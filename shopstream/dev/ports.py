"""Free loopback ports and waiting for a listener: for the dev stack, the benchmarks and the tests.

No production process picks its own port (they take theirs from the settings), so these live here.
"""

from __future__ import annotations

import socket
import time
import urllib.request


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive TCP ports that are all free on `host` right now.

    `shopstream dev` gives its workers the web ports base, base+1, …; a free base alone does not
    make the others free (another test's stack may hold them)."""
    for _ in range(100):
        base = free_port(host)
        if base + count > 65536:
            continue
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                # As the servers bind (aiohttp, http.server: SO_REUSEADDR): a port whose only sockets are
                # closed connections in TIME_WAIT is free for them. Without it, a machine holding ~10,000
                # TIME_WAIT sockets (a load test's connections) found no block of 9 in 100 tries.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {count} free ports found on {host}")


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def http_ok(url: str, timeout_s: float) -> bool:
    """Whether `url` answers 200 within `timeout_s` (polled)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def port_free(host: str, port: int) -> bool:
    """Whether a server could bind `host:port` now."""
    with socket.socket() as s:
        # Servers bind with SO_REUSEADDR, so connections in TIME_WAIT must not count as "in use".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False
