"""`free_port_block`: `shopstream dev` gives its workers consecutive web ports, so all of them must be free."""

from __future__ import annotations

import socket

import pytest

from shopstream.dev import ports
from shopstream.dev.ports import free_port, free_port_block


def test_every_port_of_the_block_can_be_bound() -> None:
    base = free_port_block(4)
    sockets = [socket.socket() for _ in range(4)]
    try:
        for offset, s in enumerate(sockets):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is free
            s.bind(("127.0.0.1", base + offset))  # raises if any of them were taken
    finally:
        for s in sockets:
            s.close()


def test_a_block_is_never_handed_out_over_a_held_port(monkeypatch: pytest.MonkeyPatch) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", free_port()))
    held.listen()
    taken = held.getsockname()[1]
    # the first proposal overlaps the listener, the second starts right after it
    monkeypatch.setattr(ports, "_bases", lambda count: iter([taken - 1, taken + 1]))
    try:
        assert free_port_block(4) == taken + 1
    finally:
        held.close()


def test_ports_lie_outside_the_ephemeral_range() -> None:
    """Outgoing connections take their local port from that range: a port there could be taken between
    the probe and the server's bind."""
    low, high = ports._ephemeral()
    for _ in range(50):
        base = free_port_block(9)
        assert base >= ports.LOWEST and (base + 8 < low or base > high)
