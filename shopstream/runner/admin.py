"""A worker's admin port: `/metrics` (Prometheus text), `/readyz` (the runner's readiness), `/healthz`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Readiness = Callable[[], tuple[dict[str, Any], int]]


class AdminServer:
    """Serves the three paths from a daemon thread until `close`."""

    def __init__(self, host: str, port: int, readiness: Readiness) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/readyz"):
                    body, status = readiness()
                    self._send(status, json.dumps(body).encode(), "application/json")
                elif self.path.startswith("/healthz"):
                    self._send(200, b'{"status": "ok"}', "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # probes every second: no access log
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="admin-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
