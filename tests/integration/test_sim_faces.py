"""The simulator's webhook poster keeps one connection per sender and survives a server closing it while idle.

A local HTTP/1.1 server stands in for the connectors service: only the connection handling is under test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shopstream.sim.faces import _post_kept_alive


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections: list[int]
    drop_after_answer: bool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections.append(self.client_address[1])

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = json.dumps({"got": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        # An idle timeout: the server closes a kept-alive connection without having said so.
        self.close_connection = self.server.drop_after_answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.connections, srv.drop_after_answer = [], False
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/webhooks/shopify"


def _post_from_new_thread(url: str, bodies: list[bytes]) -> list[tuple[int, dict[str, object]]]:
    answers: list[tuple[int, dict[str, object]]] = []
    thread = threading.Thread(target=lambda: answers.extend(_post_kept_alive(url, b, {}) for b in bodies))
    thread.start()
    thread.join(10)
    return answers


def test_one_sender_posts_every_delivery_on_one_connection(server: _Server) -> None:
    answers = _post_from_new_thread(_url(server), [b"a", b"b", b"c"])
    assert answers == [(200, {"got": "a"}), (200, {"got": "b"}), (200, {"got": "c"})]
    assert len(server.connections) == 1


def test_a_connection_the_server_closed_is_replaced_and_the_delivery_answered(server: _Server) -> None:
    server.drop_after_answer = True
    answers = _post_from_new_thread(_url(server), [b"a", b"b", b"c"])
    assert answers == [(200, {"got": "a"}), (200, {"got": "b"}), (200, {"got": "c"})]
    assert len(server.connections) == 3  # each delivery after a close went out on a new connection


def test_no_server_is_no_answer_not_an_exception(server: _Server) -> None:
    url = _url(server)
    server.shutdown()
    server.server_close()
    status, body = _post_from_new_thread(url, [b"a"])[0]
    assert status == 0 and "error" in body
