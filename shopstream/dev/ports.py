"""Free loopback ports and waiting for a listener: for the dev stack, the benchmarks and the tests.

No production process picks its own port (they take theirs from the settings), so these live here.
"""

from __future__ import annotations

import random
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# Ports handed out lie outside the kernel's ephemeral range: a port taken from inside it (bind to 0) can be
# given to an outgoing connection (a Kafka client, an HTTP request) between the probe and the server's own
# bind, which a fresh-clone CI run met ("Address already in use" for a worker's admin port while ~9,800
# connections sat in TIME_WAIT). Outside it, only a listener can hold a port, and the probe sees that.
LOWEST = 10_000
_TRIES = 200


def _ephemeral() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bases(count: int) -> Iterator[int]:
    """Random first ports of `count`-port blocks that lie wholly outside the ephemeral range."""
    low, high = _ephemeral()
    spans = [(LOWEST, low - count), (high + 1, 65536 - count)]
    spans = [(a, b) for a, b in spans if b > a]
    if not spans:
        raise RuntimeError(f"no room for {count} ports outside the ephemeral range {low}-{high}")
    sizes = [b - a for a, b in spans]
    for _ in range(_TRIES):
        a, b = random.choices(spans, weights=sizes)[0]
        yield random.randrange(a, b)


def _free(host: str, base: int, count: int) -> bool:
    sockets: list[socket.socket] = []
    try:
        for port in range(base, base + count):
            s = socket.socket()
            sockets.append(s)
            # As the servers bind (aiohttp, http.server, Tansu, moto: SO_REUSEADDR): a port whose only
            # sockets are closed connections in TIME_WAIT is free for them.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in sockets:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (outside the ephemeral range)."""
    return free_port_block(1, host)


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive TCP ports that are all free on `host` right now (outside the
    ephemeral range).

    `shopstream dev` gives its workers the web ports base, base+1, …; a free base alone does not
    make the others free (another test's stack may hold them)."""
    for base in _bases(count):
        if _free(host, base, count):
            return base
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
