"""`free_port_block`: `shopstream dev` gives its workers consecutive web ports, so all of them must be free."""

from __future__ import annotations

import socket

from shopstream.dev.ports import free_port_block


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


def test_a_block_is_never_handed_out_over_a_held_port() -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    try:
        for _ in range(50):
            base = free_port_block(4)
            assert not base <= taken < base + 4
    finally:
        held.close()
