"""The system's faces as the simulator uses them: signed webhooks, the authenticated API, the output topics."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from shopstream.connectors import stripe as stripe_connector
from shopstream.connectors.shopify import sign as shopify_sign
from shopstream.connectors.signing import shopstream_headers
from shopstream.dev.broker import DURABLE_FETCH_MAX_WAIT_MS
from shopstream.kafka import fetched_end
from shopstream.sim.steps import Step


@dataclass
class Faces:
    """Where the stack answers and the secrets it checks."""

    connectors: str
    api: str
    token: str
    secrets: dict[str, str]  # source -> webhook secret
    bootstrap: str
    registry: str
    prefix: str = ""
    state_dir: str = ""  # the dev stack's SHOPSTREAM_STATE_DIR: its dev-pids.json names the processes to kill
    worker_port: int = 0  # SHOPSTREAM_WORKER_PORT: the workers' /readyz after a kill


def _decoded(status: int, raw: bytes) -> tuple[int, dict[str, Any]]:
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:
        return status, {"raw": raw[:200].decode(errors="replace")}


def _request(url: str, data: bytes | None, headers: dict[str, str], method: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return _decoded(resp.status, resp.read())
    except urllib.error.HTTPError as err:
        return _decoded(err.code, err.read())
    except OSError as err:
        return 0, {"error": str(err)}


def signed_delivery(faces: Faces, step: Step) -> tuple[str, bytes, dict[str, str]]:
    """(URL, body, headers) of one step as its source system signs it (a `badsig` step with a wrong signature).

    Shared by `post_step` and the open-loop `shopstream bench orders`, which posts through aiohttp."""
    body = step.body if isinstance(step.body, bytes) else json.dumps(step.body).encode()
    secret = faces.secrets[step.source]
    if step.fault == "badsig":
        secret = secret + "-forged"
    headers = {"Content-Type": "application/json"}
    if step.source == "shopify":
        headers.update({"X-Shopify-Topic": step.kind, "X-Shopify-Hmac-Sha256": shopify_sign(secret, body),
                        "X-Shopify-Webhook-Id": step.delivery_id, "X-Shopify-Shop-Domain": "sim-shop.myshopify.com"})
    elif step.source == "stripe":
        headers["Stripe-Signature"] = stripe_connector.signature_header(secret, body, int(time.time()))
    else:
        headers.update(shopstream_headers(secret, body, step.delivery_id))
    return f"{faces.connectors}/webhooks/{step.source}", body, headers


# One kept-alive connection per sender thread and host: at 100 orders/s the simulator posts ~280 webhooks/s, and a
# new TCP connection per delivery cost the stack (and the simulator) more than the delivery itself.
_kept = threading.local()


def _post_on(pool: dict[str, http.client.HTTPConnection], parts: urllib.parse.SplitResult, body: bytes,
             headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    conn = pool.get(parts.netloc)
    if conn is None:
        conn = pool[parts.netloc] = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        pool.pop(parts.netloc, None)
        raise
    if resp.will_close:
        conn.close()
        pool.pop(parts.netloc, None)
    return _decoded(resp.status, raw)


def _post_kept_alive(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST on this thread's open connection to the URL's host; (0, error) when no answer came.

    A connection the server closed while idle fails on its next use: that one is retried once on a new
    connection (a webhook delivery is idempotent by its delivery id, so a second copy is harmless)."""
    parts = urllib.parse.urlsplit(url)
    pool: dict[str, http.client.HTTPConnection] = _kept.__dict__.setdefault("pool", {})
    reused = parts.netloc in pool
    try:
        return _post_on(pool, parts, body, headers)
    except (OSError, http.client.HTTPException) as err:
        if not reused:
            return 0, {"error": str(err)}
    return _post_kept_alive(url, body, headers)  # the failed connection left the pool: this one is new


def post_step(faces: Faces, step: Step) -> tuple[int, dict[str, Any]]:
    """Deliver one step as its source system does (signed; a `badsig` step with a wrong signature)."""
    url, body, headers = signed_delivery(faces, step)
    return _post_kept_alive(url, body, headers)


def api_get(faces: Faces, path: str) -> tuple[int, dict[str, Any]]:
    """GET on the read API with the bearer token."""
    return _request(f"{faces.api}{path}", None, {"Authorization": f"Bearer {faces.token}"}, "GET")


def api_post(faces: Faces, path: str, doc: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """POST JSON on the API with the bearer token."""
    return _request(f"{faces.api}{path}", json.dumps(doc or {}).encode(),
                    {"Authorization": f"Bearer {faces.token}", "Content-Type": "application/json"}, "POST")


def read_topic(faces: Faces, name: str, partitions: int, idle_s: float = 1.0, timeout_s: float = 60.0) -> list[Message]:
    """Every record on topic `name` (under the prefix) up to the ends seen when reading starts; no consumer group.

    The fetches wait as long as the durable broker's clients (dev/broker.py: Tansu answers a fetch empty when
    listing the partition in S3 outlasts the wait); a partition's end is the larger of ListOffsets and the
    fetch responses' high watermark (the former falls short on Tansu, most on S3: runner/store.py)."""
    consumer = Consumer({"bootstrap.servers": faces.bootstrap, "group.id": "shopstream-simulate",
                         "enable.auto.commit": False, "fetch.wait.max.ms": DURABLE_FETCH_MAX_WAIT_MS})
    tps = [TopicPartition(faces.prefix + name, p, 0) for p in range(partitions)]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    pending = {p for p, end in ends.items() if end > 0}  # partitions whose end was not read yet
    consumer.assign(tps)
    records: list[Message] = []
    deadline, last = time.monotonic() + timeout_s, time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = [m for m in consumer.consume(1000, 0.2) if not m.error()]
            if batch:
                records += batch
                last = time.monotonic()
                for m in batch:
                    p = m.partition() or 0
                    if p in pending and (m.offset() or 0) + 1 >= fetched_end(consumer, tps[p].topic, p, ends[p]):
                        pending.discard(p)
            else:
                quiet = time.monotonic() - last
                # Tansu's high watermark may stop short of the last record: also stop after a long quiet.
                if (not pending and quiet >= idle_s) or quiet >= 3 * idle_s:
                    break
    finally:
        consumer.close()
    return records
