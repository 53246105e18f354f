"""The runner's admin server on a real socket: only health, readiness and metrics (issue 12, exposure)."""

from __future__ import annotations


def test_worker_admin_port_serves_only_health_readiness_and_metrics() -> None:
    """The runner's admin server: no table or router endpoints (as Faust's web server had), bound as told."""
    import urllib.error
    import urllib.request

    from shopstream.runner.admin import AdminServer

    server = AdminServer("127.0.0.1", 0, lambda: ({"status": "ready"}, 200))
    try:
        host, port = server._server.server_address[:2]
        assert host == "127.0.0.1"
        for path, status in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200), ("/table/", 404),
                             ("/router/", 404), ("/", 404)):
            try:
                code = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status
            except urllib.error.HTTPError as exc:
                code = exc.code
            assert code == status, path
    finally:
        server.close()
