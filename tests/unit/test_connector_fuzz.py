"""Property-based fuzzing of every source connector's `translate` (hypothesis; pure, no I/O).

Inputs: arbitrary JSON documents, the real payloads of the connector tests with one part deleted or replaced
by arbitrary JSON, and arbitrary extra headers. Properties: `translate` (and the helpers the front calls
before it) raises nothing but the connector's PayloadError, and every record it returns encodes with the
canonical Avro schema (fastavro, as the connector tests do) — so the front can only answer 2xx, a parked
4xx, or 503.
"""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fastavro
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopstream import schemas
from shopstream.connectors import shopify, stripe, woocommerce
from shopstream.connectors.base import DeliveryIdFromBody, LinksPayments, Outgoing, PayloadError, SourceConnector
from shopstream.connectors.carrier import CarrierConnector
from shopstream.connectors.erp_webhook import ErpWebhookConnector
from shopstream.connectors.returns import ReturnsConnector
from shopstream.connectors.signing import shopstream_headers
from tests.unit import (
    test_carrier_connector,
    test_erp_webhook,
    test_returns_connector,
    test_shopify_connector,
    test_shopify_refunds_fulfillments,
    test_stripe_connector,
    test_woocommerce_connector,
)

SECRET = "fuzz-secret-" + "x" * 32
RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
#: Examples per property; raise it for a longer hunt (`SHOPSTREAM_FUZZ_EXAMPLES=5000 pytest …`).
FUZZ = settings(max_examples=int(os.environ.get("SHOPSTREAM_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

#: Edge values seen in real incidents: huge and Unicode digits, out-of-range and far-future times, 30-digit prices.
EDGE_TEXT = ["", "0", "-1", "1e999", "NaN", "12.345678", "1" * 30, "1" * 30 + ".12345",
             "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-05-01T09:30:00Z",
             "2099-01-01T00:00:00Z", "\u00b2", "\uff11\uff12", "EUR", "eur", "orders/create"]
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.integers(min_value=-(10 ** 40), max_value=10 ** 40),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
                         st.sampled_from(EDGE_TEXT))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=20)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40)
extra_headers = st.dictionaries(st.sampled_from(["X-Shopify-Topic", "X-WC-Webhook-Topic", "X-Shopify-Event-Id",
                                                 "X-Shopstream-Delivery-Id", "X-Wc-Webhook-Delivery-Id",
                                                 "X-Anything"]) | header_text, header_text, max_size=3)


def encodes(out: Outgoing) -> None:
    """The record writes with its canonical schema, as the connectors' own tests check."""
    name = type(out.record).__name__
    fastavro.schemaless_writer(io.BytesIO(), schemas.parsed_schema(name), schemas.to_avro(out.record))
    assert isinstance(out.key, str)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with one to three parts deleted or replaced by arbitrary JSON."""
    doc = copy.deepcopy(payload)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(st.one_of(st.sampled_from(EDGE_TEXT), json_values))
    return doc


# Each connector: how to build it, its real payloads, and the headers a genuine delivery carries.
Signer = Callable[[bytes, dict[str, Any]], dict[str, str]]


def _shopify_headers(body: bytes, topic: str) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": shopify.sign(SECRET, body), "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": "wh-fuzz"}


def _woo_headers(body: bytes) -> dict[str, str]:
    return {"X-WC-Webhook-Signature": woocommerce.sign(SECRET, body), "X-WC-Webhook-Topic": "order.updated",
            "X-WC-Webhook-Delivery-Id": "d-fuzz"}


CASES: dict[str, tuple[SourceConnector, list[tuple[dict[str, Any], Callable[[bytes], dict[str, str]]]]]] = {
    "shopify": (shopify.ShopifyConnector(SECRET), [
        (json.loads(test_shopify_connector.DOCS_ORDER_JSON), lambda b: _shopify_headers(b, "orders/create")),
        (test_shopify_refunds_fulfillments.refund_payload(), lambda b: _shopify_headers(b, "refunds/create")),
        (test_shopify_refunds_fulfillments.fulfillment(), lambda b: _shopify_headers(b, "fulfillments/create")),
    ]),
    "woocommerce": (woocommerce.WooCommerceConnector(SECRET), [
        (json.loads(test_woocommerce_connector.DOCS_ORDER_JSON), _woo_headers),
    ]),
    "stripe": (stripe.StripeConnector(SECRET), [
        (json.loads(test_stripe_connector.event(kind, obj)), lambda b: {})
        for kind, obj in (("payment_intent.succeeded", test_stripe_connector.payment_intent()),
                          ("payment_intent.amount_capturable_updated",
                           test_stripe_connector.payment_intent(amount_capturable=5430, status="requires_capture")),
                          ("payment_intent.payment_failed", test_stripe_connector.payment_intent()),
                          ("charge.refunded", test_stripe_connector.charge()),
                          ("charge.dispute.created", test_stripe_connector.dispute()))
    ]),
    "carrier": (CarrierConnector(SECRET), [(test_carrier_connector.update(), lambda b: shopstream_headers(SECRET, b))]),
    "returns": (ReturnsConnector(SECRET), [
        (test_returns_connector.delivery(kind), lambda b: shopstream_headers(SECRET, b, "r-1"))
        for kind in ("requested", "received", "inspected")
    ]),
    "erp": (ErpWebhookConnector(SECRET), [
        (test_erp_webhook.adjustment(), lambda b: shopstream_headers(SECRET, b)),
        (test_erp_webhook.receipt(), lambda b: shopstream_headers(SECRET, b)),
        ({"events": [test_erp_webhook.adjustment(), test_erp_webhook.receipt()]},
         lambda b: shopstream_headers(SECRET, b)),
    ]),
}


def check(connector: SourceConnector, headers: dict[str, str], body: bytes) -> int:
    """Everything the front calls with an authenticated body: only PayloadError, and records that encode;
    returns how many records it produced (-1: refused)."""
    if isinstance(connector, DeliveryIdFromBody):
        connector.delivery_id_from_body(headers, body)  # must not raise at all
    connector.delivery_id(headers)
    try:
        if isinstance(connector, LinksPayments):
            connector.unlinked_payment(body)  # must not raise at all
            outgoing = connector.translate_linked(headers, body, RECEIVED, "order-linked")
        else:
            outgoing = connector.translate(headers, body, RECEIVED)
    except PayloadError:
        return -1
    for out in outgoing:
        encodes(out)
    return len(outgoing)


def _all_payloads() -> list[tuple[str, int]]:
    return [(name, i) for name, (_, payloads) in CASES.items() for i in range(len(payloads))]


def test_the_real_payloads_translate_and_encode() -> None:
    for name, i in _all_payloads():
        connector, payloads = CASES[name]
        payload, sign = payloads[i]
        body = json.dumps(payload).encode()
        assert check(connector, sign(body), body) >= 1, (name, i)  # the fuzz starts from payloads that work


@FUZZ
@given(which=st.sampled_from(_all_payloads()), doc=json_objects)
def test_arbitrary_json_objects(which: tuple[str, int], doc: dict[str, Any]) -> None:
    connector, payloads = CASES[which[0]]
    body = json.dumps(doc).encode()
    check(connector, payloads[which[1]][1](body), body)


@FUZZ
@given(which=st.sampled_from(_all_payloads()), raw=st.one_of(json_values.map(lambda v: json.dumps(v).encode()),
                                                             st.binary(max_size=200)))
def test_arbitrary_bodies(which: tuple[str, int], raw: bytes) -> None:
    connector, payloads = CASES[which[0]]
    check(connector, payloads[which[1]][1](raw), raw)


@FUZZ
@given(which=st.sampled_from(_all_payloads()), data=st.data())
def test_mutated_real_payloads(which: tuple[str, int], data: st.DataObject) -> None:
    connector, payloads = CASES[which[0]]
    payload, sign = payloads[which[1]]
    body = json.dumps(data.draw(mutated(payload))).encode()
    check(connector, sign(body), body)


def test_every_field_of_every_real_payload_with_every_edge_value() -> None:
    # Exhaustive where random sampling is thin: one edge value in one leaf at a time (a 30-digit price in
    # a line item is one of ~2,000 such bodies; chance alone would rarely reach it).
    for name, i in _all_payloads():
        connector, payloads = CASES[name]
        payload, sign = payloads[i]
        for path in _paths(payload):
            for value in [*EDGE_TEXT, 10 ** 30, -1, 1.5, None, [], {}]:
                doc = copy.deepcopy(payload)
                parent = doc
                for step in path[:-1]:
                    parent = parent[step]
                parent[path[-1]] = value
                body = json.dumps(doc).encode()
                check(connector, sign(body), body)


@FUZZ
@given(which=st.sampled_from(_all_payloads()), extra=extra_headers)
def test_arbitrary_headers(which: tuple[str, int], extra: dict[str, str]) -> None:
    connector, payloads = CASES[which[0]]
    payload, sign = payloads[which[1]]
    body = json.dumps(payload).encode()
    headers = {**sign(body), **extra}
    connector.verify(headers, body)  # must not raise, whatever the headers say
    check(connector, headers, body)
