"""The embedded schema registry, proven with confluent-kafka's own client and Avro serde.

The service runs in-process on a free loopback port with a tmp storage file; no broker needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from shopstream.dev.registry.service import CONTENT_TYPE, RegistryServer, start_in_thread
from shopstream.dev.registry.store import SchemaStore

SUBJECT = "shop.orders-value"


def order_schema(*extra_fields: dict[str, Any], qty: str = "int") -> Schema:
    fields = [{"name": "order_id", "type": "string"}, {"name": "qty", "type": qty}, *extra_fields]
    body = {"type": "record", "name": "OrderPlaced", "namespace": "shopstream", "fields": fields}
    return Schema(json.dumps(body, indent=2), "AVRO")


V1 = order_schema()
V2 = order_schema({"name": "note", "type": ["null", "string"], "default": None}, qty="long")
INCOMPATIBLE = order_schema({"name": "currency", "type": "string"})


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "registry.json"


TOKEN = "registry-admin-token-" + "t" * 16


@pytest.fixture
def server(storage: Path) -> Iterator[RegistryServer]:
    running = start_in_thread(SchemaStore(storage), token=TOKEN)
    yield running
    running.stop()


def client_for(server: RegistryServer) -> SchemaRegistryClient:
    """confluent-kafka's client with the admin token (its static bearer token; the pool/cluster are unused)."""
    return SchemaRegistryClient({"url": server.url, "bearer.auth.credentials.source": "STATIC_TOKEN",
                                 "bearer.auth.token": TOKEN, "bearer.auth.logical.cluster": "lsrc-dev",
                                 "bearer.auth.identity.pool.id": "pool-dev"})


def test_administrative_writes_need_the_token(server: RegistryServer, storage: Path) -> None:
    plain = SchemaRegistryClient({"url": server.url})
    plain.register_schema(SUBJECT, V1)  # services register without a token
    assert plain.get_versions(SUBJECT) == [1]
    writes = (("PUT", "/config"), ("PUT", f"/config/{SUBJECT}"), ("DELETE", f"/config/{SUBJECT}"),
              ("DELETE", f"/subjects/{SUBJECT}?permanent=true"), ("DELETE", f"/subjects/{SUBJECT}/versions/1"))
    for method, path in writes:
        body = {"compatibility": "NONE"} if method == "PUT" else None
        assert httpx.request(method, server.url + path, json=body).status_code == 401, path
        wrong = httpx.request(method, server.url + path, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, path
    assert plain.get_versions(SUBJECT) == [1] and plain.get_compatibility() == "BACKWARD"
    # Without a configured token the writes are off altogether.
    tokenless = start_in_thread(SchemaStore(storage.with_name("other.json")))
    try:
        resp = httpx.put(f"{tokenless.url}/config", json={"compatibility": "NONE"},
                         headers={"Authorization": "Bearer anything"})
        assert resp.status_code == 403 and "SHOPSTREAM_REGISTRY_TOKEN" in resp.json()["message"]
    finally:
        tokenless.stop()


def test_refuses_a_public_bind_unless_allowed(storage: Path) -> None:
    from shopstream.config import ConfigError
    from shopstream.dev.registry.service import serve

    with pytest.raises(ConfigError, match="SHOPSTREAM_REGISTRY_ALLOW_REMOTE"):
        serve("0.0.0.0", 1, str(storage))


def sr_error(call: Any, *args: Any) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as info:
        call(*args)
    return info.value


def test_register_read_and_evolve(server: RegistryServer) -> None:
    sr = client_for(server)
    id1 = sr.register_schema(SUBJECT, V1)
    assert sr.register_schema(SUBJECT, V1) == id1  # idempotent
    assert client_for(server).register_schema(SUBJECT, V1) == id1  # also without the client cache
    assert client_for(server).register_schema("other-value", V1) == id1  # same schema, same global id

    assert json.loads(client_for(server).get_schema(id1).schema_str) == json.loads(V1.schema_str)
    assert client_for(server).get_schema(id1, subject_name=SUBJECT).schema_type == "AVRO"

    id2 = sr.register_schema(SUBJECT, V2)
    assert id2 != id1
    latest = client_for(server).get_latest_version(SUBJECT)
    assert (latest.subject, latest.version, latest.schema_id) == (SUBJECT, 2, id2)
    assert json.loads(latest.schema.schema_str) == json.loads(V2.schema_str)
    first = client_for(server).get_version(SUBJECT, 1)
    assert (first.version, first.schema_id) == (1, id1)
    assert sr.get_versions(SUBJECT) == [1, 2]
    assert sr.get_subjects() == ["other-value", SUBJECT]
    assert [(v.subject, v.version) for v in sr.get_schema_versions(id1)] == [("other-value", 1), (SUBJECT, 1)]

    found = client_for(server).lookup_schema(SUBJECT, V1)
    assert (found.subject, found.version, found.schema_id) == (SUBJECT, 1, id1)


def test_compatibility_is_enforced(server: RegistryServer) -> None:
    sr = client_for(server)
    sr.register_schema(SUBJECT, V1)
    assert sr.test_compatibility(SUBJECT, V2) is True
    assert sr.test_compatibility(SUBJECT, INCOMPATIBLE) is False
    assert sr.test_compatibility("no-such-subject", INCOMPATIBLE) is True  # nothing to break

    err = sr_error(sr.register_schema, SUBJECT, INCOMPATIBLE)
    assert (err.http_status_code, err.error_code) == (409, 409)
    assert "OrderPlaced.currency: field without default added" in err.error_message
    assert sr.get_versions(SUBJECT) == [1]

    # verbose answers carry the reasons, in Confluent's shape and content type
    url = f"{server.url}/compatibility/subjects/{SUBJECT}/versions/latest?verbose=true"
    resp = httpx.post(url, json={"schema": INCOMPATIBLE.schema_str}, headers={"Content-Type": CONTENT_TYPE})
    assert resp.headers["content-type"].startswith(CONTENT_TYPE)
    assert resp.json()["is_compatible"] is False
    assert any("field without default added" in m for m in resp.json()["messages"])

    assert sr.get_compatibility() == "BACKWARD"
    sr.set_compatibility(SUBJECT, "NONE")
    assert sr.get_compatibility(SUBJECT) == "NONE"
    assert sr.register_schema(SUBJECT, INCOMPATIBLE) > 0
    assert sr.get_compatibility("other-value") == "BACKWARD"  # falls back to the global level


def test_confluent_error_codes(server: RegistryServer) -> None:
    sr = client_for(server)
    sr.register_schema(SUBJECT, V1)
    cases = [
        (sr.get_schema, (9999,), 404, 40403),
        (sr.get_versions, ("missing",), 404, 40401),
        (sr.get_version, (SUBJECT, 7), 404, 40402),
        (sr.lookup_schema, (SUBJECT, V2), 404, 40403),
        (sr.lookup_schema, ("missing", V1), 404, 40401),
        (sr.register_schema, (SUBJECT, Schema('{"type": "record", "name": "X"}', "AVRO")), 422, 42201),
        (sr.register_schema, (SUBJECT, Schema("not json", "AVRO")), 422, 42201),
        (sr.register_schema, (SUBJECT, Schema('{"type": "Nope"}', "AVRO")), 422, 42201),
        (sr.set_compatibility, (None, "SIDEWAYS"), 422, 42203),
    ]
    for call, args, status, code in cases:
        err = sr_error(call, *args)
        assert (err.http_status_code, err.error_code) == (status, code), (call.__name__, args, err)

    resp = httpx.get(f"{server.url}/")
    assert resp.status_code == 200 and resp.json() == {}
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/nope").json()["error_code"] == 404


def test_delete_subject(server: RegistryServer) -> None:
    sr = client_for(server)
    schema_id = sr.register_schema(SUBJECT, V1)
    assert sr.delete_subject(SUBJECT) == [1]
    assert sr.get_subjects() == []
    assert sr.get_subjects(deleted=True) == [SUBJECT]
    assert sr.get_versions(SUBJECT, deleted=True) == [1]
    assert sr.delete_subject(SUBJECT, permanent=True) == [1]
    assert sr.get_subjects(deleted=True) == []
    # ids stay readable: records written with them may still sit on topics
    assert json.loads(client_for(server).get_schema(schema_id).schema_str)["name"] == "OrderPlaced"


def test_avro_serde_with_confluent_framing(server: RegistryServer) -> None:
    sr = client_for(server)
    ctx = SerializationContext("shop.orders", MessageField.VALUE)
    serializer = AvroSerializer(sr, V1.schema_str)  # auto-registers under shop.orders-value
    record = {"order_id": "o-1", "qty": 3}
    data = serializer(record, ctx)
    assert data is not None

    schema_id = client_for(server).get_latest_version(SUBJECT).schema_id
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == schema_id

    deserializer = AvroDeserializer(client_for(server))
    assert deserializer(data, ctx) == record


def test_survives_restart(storage: Path) -> None:
    first = start_in_thread(SchemaStore(storage), token=TOKEN)
    try:
        sr = client_for(first)
        id1 = sr.register_schema(SUBJECT, V1)
        id2 = sr.register_schema(SUBJECT, V2)
        sr.set_compatibility(SUBJECT, "FULL")
    finally:
        first.stop()

    second = start_in_thread(SchemaStore(storage))
    try:
        sr = client_for(second)
        assert json.loads(sr.get_schema(id1).schema_str) == json.loads(V1.schema_str)
        assert sr.get_versions(SUBJECT) == [1, 2]
        assert sr.get_latest_version(SUBJECT).schema_id == id2
        assert sr.get_compatibility(SUBJECT) == "FULL"
        assert sr.register_schema(SUBJECT, V2) == id2  # still idempotent
        id3 = sr.register_schema("other-value", order_schema(qty="double"))
        assert id3 not in (id1, id2)  # ids are never reused
    finally:
        second.stop()
