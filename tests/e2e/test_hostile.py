"""Hostile and broken input against the running stack (`shopstream dev`), through its public faces only.

Each request issue 12 reported (or found by reading) gets its documented answer — never a 500 — and what
was refused after the signature check lies on `connectors.dlq`; `dlq list` shows it; a carrier status
nobody had mapped is processed by `dlq redrive` once the status is added. The ERP file edge cases give
their documented exit codes. And nothing internal answers on a public port.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shopstream.connectors import shopify, woocommerce
from shopstream.connectors.payload import MAX_BODY
from shopstream.connectors.signing import shopstream_headers
from shopstream.dev.shopify_samples import shopify_order
from tests.e2e.conftest import CARRIER_SECRET, SHOPIFY_SECRET, WOOCOMMERCE_SECRET, RunningStack
from tests.unit.test_woocommerce_connector import DOCS_ORDER_JSON

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def post(base: str, path: str, body: bytes, headers: Sequence[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
    """POST with the headers exactly as given (a name may repeat); the status and the JSON answer."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        conn.putrequest("POST", path)
        for name, value in [*headers, ("Content-Length", str(len(body)))]:
            conn.putheader(name, value.encode("latin-1", "replace"))
        conn.endheaders(body)
        resp = conn.getresponse()
        text = resp.read()
        return resp.status, json.loads(text) if text else {}
    finally:
        conn.close()


def signed_shopify(body: bytes, delivery: str, topic: str = "orders/create") -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("X-Shopify-Topic", topic), ("X-Shopify-Webhook-Id", delivery),
            ("X-Shopify-Hmac-Sha256", shopify.sign(SHOPIFY_SECRET, body)),
            ("X-Api-Key", "leaked-key"), ("X-Forwarded-For", "203.0.113.9")]


def order_body(order_id: int, **changes: Any) -> bytes:
    return json.dumps({**shopify_order(order_id, created_at=datetime.now(UTC).replace(microsecond=0)),
                       **changes}).encode()


def cli(stack: RunningStack, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**stack.dev.env, "SCHEMA_REGISTRY_URL": stack.registry, **env}
    return subprocess.run([sys.executable, "-m", "shopstream.cli", *argv], env=full, capture_output=True,
                          text=True, timeout=120)


def parked_keys(stack: RunningStack) -> dict[bytes, dict[str, bytes]]:
    return {m.key(): dict(m.headers() or []) for m in stack.read_topic("connectors.dlq", partitions=1)}


def wait_parked(stack: RunningStack, keys: set[bytes], timeout_s: float = 30) -> dict[bytes, dict[str, bytes]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = parked_keys(stack)
        if keys <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_every_reported_request_gets_its_documented_answer(stack: RunningStack, tmp_path: Path) -> None:
    base, n = stack.connectors, uuid.uuid4().int % 10**9
    ids = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in
           ("deep", "bigint", "year1", "future", "big", "carrier", "escape", "twice")}
    expected: dict[str, tuple[int, bytes, list[tuple[str, str]]]] = {}

    # Unauthenticated Stripe requests with a Unicode digit, or 5,000 digits, as timestamp: 401, nothing parked.
    for t in ("\u00b2", "9" * 5000):
        status, answer = post(base, "/webhooks/stripe", b"{}", [("Stripe-Signature", f"t={t},v1=00")])
        assert status == 401, answer
    # Signed bodies that used to raise: nesting, a huge integer, year 1 with an offset, a 2099 timestamp.
    deep = b'{"id": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    expected["deep"] = (422, deep, signed_shopify(deep, ids["deep"]))
    bigint = b'{"id": ' + b"7" * 5000 + b"}"
    expected["bigint"] = (422, bigint, signed_shopify(bigint, ids["bigint"]))
    year1 = order_body(n + 1, created_at="0001-01-01T00:00:00+01:00", updated_at="0001-01-01T00:00:00+01:00")
    expected["year1"] = (422, year1, signed_shopify(year1, ids["year1"]))
    future = order_body(n + 2, updated_at="2099-01-01T00:00:00Z")
    expected["future"] = (422, future, signed_shopify(future, ids["future"], "orders/updated"))
    big = b'{"x": "' + b"a" * (MAX_BODY + 1) + b'"}'
    expected["big"] = (413, big, signed_shopify(big, ids["big"]))
    teleported = json.dumps({"tracking_number": f"1Z{n}", "carrier": "UPS", "order_id": str(n + 3),
                             "status": "Teleported", "status_system": "aftership",
                             "occurred_at": datetime.now(UTC).isoformat(), "lines": []}).encode()
    carrier_headers = shopstream_headers(CARRIER_SECRET, teleported, ids["carrier"])
    expected["carrier"] = (422, teleported, list(carrier_headers.items()))
    escape = order_body(n + 4, currency="\u009b2J\u001b]0;owned\u0007")
    expected["escape"] = (422, escape, signed_shopify(escape, ids["escape"]))
    for name, (status, body, headers) in expected.items():
        path = "/webhooks/carrier" if name == "carrier" else "/webhooks/shopify"
        got, answer = post(base, path, body, headers)
        assert got == status, (name, got, answer)
        assert "error" in answer and "Traceback" not in json.dumps(answer), (name, answer)
    # WooCommerce: a 30-digit price rounded to 4 places was decimal.InvalidOperation.
    woo = json.loads(DOCS_ORDER_JSON)
    woo["line_items"][0].update(price="1" * 30 + ".12345", subtotal="")
    woo_body = json.dumps(woo).encode()
    status, answer = post(base, "/webhooks/woocommerce", woo_body, [
        ("X-WC-Webhook-Signature", woocommerce.sign(WOOCOMMERCE_SECRET, woo_body)),
        ("X-WC-Webhook-Topic", "order.created"), ("X-WC-Webhook-Delivery-Id", f"woo-{n}")])
    assert status == 422, answer
    # A signature header sent twice: 400 before anything else.
    good = order_body(n + 5)
    status, answer = post(base, "/webhooks/shopify", good,
                          [*signed_shopify(good, ids["twice"]), ("X-Shopify-Hmac-Sha256", "AAAA")])
    assert status == 400 and "more than once" in answer["error"], answer

    # What got past the signature check lies on connectors.dlq, with allowlisted headers only.
    # (The 413 body was never verified, so it is parked under the source's name, not a delivery id.)
    wanted = {ids[k].encode() for k in ("deep", "bigint", "year1", "future", "carrier", "escape")}
    parked = wait_parked(stack, wanted | {f"woo-{n}".encode(), b"shopify"})
    assert wanted <= set(parked), sorted(set(parked))
    for key in wanted:
        assert not any(h in parked[key] for h in ("http.x-api-key", "http.x-forwarded-for")), key
    assert parked[b"shopify"]["shopstream.webhook.truncated"] == str(len(big)).encode()
    assert b"ahead of our clock" in parked[ids["future"].encode()]["shopstream.dlq.error.message"]

    # The claim was released: the corrected resend of a refused delivery is accepted, not "duplicate".
    fixed = order_body(n + 1)
    status, answer = post(base, "/webhooks/shopify", fixed, signed_shopify(fixed, ids["year1"]))
    assert status == 200 and answer["status"] == "accepted", answer

    # dlq list shows the rejected bodies; dlq show prints no terminal control sequence.
    listed = cli(stack, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (connectors,) = [t for t in json.loads(listed.stdout)["topics"] if t["topic"] == "connectors.dlq"]
    assert connectors["records"] >= len(wanted) + 2
    classes = {g["error_class"] for g in connectors["by_error_class"]}
    assert {"shopstream.connectors.base.PayloadError", "shopstream.connectors.webhook.BodyTooLarge"} <= classes, classes
    shown = cli(stack, "dlq", "show", "connectors.dlq", "--limit", "100")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x9b" not in shown.stdout and "\\u009b2J" in shown.stdout

    # The carrier started sending a status nobody mapped: add it, rehearse, redrive.
    mapping = tmp_path / "carrier.yaml"
    mapping.write_text("systems:\n  aftership:\n    Teleported:\n      event: ShipmentDispatched\n")
    rehearse = cli(stack, "dlq", "redrive", "connectors.dlq", "--source", "carrier", "--dry-run",
                   SHOPSTREAM_CARRIER_MAPPING=str(mapping))
    assert rehearse.returncode == 0 and "would publish 1 event(s)" in rehearse.stdout, rehearse.stdout
    done = cli(stack, "dlq", "redrive", "connectors.dlq", "--source", "carrier",
               SHOPSTREAM_CARRIER_MAPPING=str(mapping))
    assert done.returncode == 0 and "accepted" in done.stdout, done.stdout + done.stderr
    deadline = time.monotonic() + 30
    while not [m for m in stack.read_topic("fulfillment.shipments") if m.key() == str(n + 3).encode()]:
        assert time.monotonic() < deadline, "the redriven carrier update was not published"
        time.sleep(0.5)


def test_erp_file_edge_cases(stack: RunningStack, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:6]
    valid = "".join(f"E{token}-{i};{i}\r\n" for i in range(3000))
    text = ("\ufeffsku;on_hand\r\n" + f'"E{token}-broken;1\r\n' + valid + "X" * 200 * 1024 + ";1\r\n"
            + f"E{token}-wide;\uff11\uff12\r\n" + "S" * 300 + ";1\r\n")
    export = tmp_path / "stock.csv"
    export.write_bytes(text.encode())
    done = cli(stack, "ingest", "erp-stock", str(export), "--as-of", datetime.now(UTC).isoformat())
    assert done.returncode == 1, done.stdout + done.stderr  # some rows rejected, the others published
    assert "read 3004, published 3000" in done.stdout and "rejected 4" in done.stdout, done.stdout
    for reason in ("unterminated quote", "field larger than field limit", "not a whole number", "longer than 255"):
        assert reason in done.stderr, (reason, done.stderr)
    tab = tmp_path / "tab.csv"
    tab.write_text(f"sku\ton_hand\nT{token}\t4\n")
    assert cli(stack, "ingest", "erp-stock", str(tab)).returncode == 0
    typo = cli(stack, "ingest", "erp-stock", str(tab), "--as-of", "2062-11-23T06:00:00Z")
    assert typo.returncode == 2 and "ahead of our clock" in typo.stderr, typo.stderr


def status_of(url: str, method: str = "GET", body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_nothing_internal_answers_on_a_public_port(stack: RunningStack) -> None:
    for public in (stack.connectors, stack.api):
        assert status_of(f"{public}/healthz") == 200
        assert status_of(f"{public}/metrics") == 404
        assert status_of(f"{public}/readyz") == 404
    for admin in (stack.dev.connectors_admin_url, stack.dev.api_admin_url):
        assert status_of(f"{admin}/metrics") == 200
    workers = int(stack.dev.env["SHOPSTREAM_WORKER_PORT"])
    for port in (workers, workers + 2):  # the Faust workers: orders, inventory
        for path in ("/table/", "/table/orders/", "/router/", "/graph/", "/assignment/"):
            assert status_of(f"http://127.0.0.1:{port}{path}") == 404, (port, path)
        assert status_of(f"http://127.0.0.1:{port}/metrics") == 200
    registry = stack.registry
    assert status_of(f"{registry}/config", "PUT", b'{"compatibility": "NONE"}') in (401, 403)
    subject = f"{stack.prefix}shop.orders-OrderPlaced"
    assert status_of(f"{registry}/subjects/{subject}?permanent=true", "DELETE") in (401, 403)
    assert status_of(f"{registry}/config") == 200  # reads stay open
