"""Catalog through the public faces only (`shopstream dev` with the catalog worker): webhooks in, the API out.

What it shows is issue 16's list: a real-shaped Shopify product with variants → its quality document; its
`products/delete` (only the product id) → every variant deleted, an unknown id parked; a PIM product
complete, then without a required attribute → the score falls, the failed check is named, a work item opens
(queue `catalog`); fixing it closes the item; a 60 % price cut → pending approval and no
UpdatePrice; a reviewer's approval → exactly one UpdatePrice; a promotion with a start and an end → the
price changes at the start and is restored at the end.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shopstream.auth import TokenEntry, hash_token, load_tokens, write_tokens
from shopstream.connectors.signing import shopstream_headers
from shopstream.dev.process import spawn_dev
from shopstream.dev.shopify_samples import get_json, post_shopify
from shopstream.schemas.models import UpdatePrice
from tests.e2e.conftest import SHOPIFY_SECRET, RunningStack
from tests.e2e.test_order_lifecycle import Outputs, _post, _wait
from tests.e2e.test_review import post_json
from tests.unit.catalog_fixtures import SHOPIFY_PRODUCT, shopify_product
from tests.workers import TEST_TOKENS

pytestmark = pytest.mark.broker
PIM_SECRET = "e2e-pim-secret-0123456789abcdef0123"
LONG = "Ledergürtel aus vollnarbigem Rindleder mit gebürsteter Stahlschnalle, 3,5 cm breit."
SKU = "E2E-BELT"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`shopstream dev` with a PIM secret and a token per role."""
    token = uuid.uuid4().hex[:8]
    prefix = f"e2ecat{token}."
    state = tmp_path_factory.mktemp("dev")
    dev = spawn_dev(state, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, SHOPSTREAM_TOPIC_PREFIX=prefix,
                    SHOPSTREAM_REDIS_PREFIX=f"test:e2ecat{token}:", REDIS_URL=redis_url,
                    SHOPSTREAM_SHOPIFY_SECRET=SHOPIFY_SECRET, SHOPSTREAM_PIM_SECRET=PIM_SECRET,
                    KAFKA_SESSION_TIMEOUT_S="6", SCHEMA_REGISTRY_URL="")
    dev.wait_ready()
    try:
        tokens = state / "api-tokens.yaml"
        entries = list(load_tokens(tokens).tokens)
        entries += [TokenEntry(name=name, roles=(role,), sha256=hash_token(secret))  # type: ignore[arg-type]
                    for role, (name, secret) in TEST_TOKENS.items()]
        time.sleep(1.1)  # a new modification time, which the API checks
        write_tokens(tokens, entries)
        yield RunningStack(dev=dev, prefix=prefix, bootstrap=kafka_bootstrap, mappings_dir=state)
    finally:
        dev.stop()


def viewer_get(stack: RunningStack, path: str) -> tuple[int, dict[str, Any]]:
    return get_json(f"{stack.api}{path}", TEST_TOKENS["viewer"][1])


def quality(stack: RunningStack, sku: str, where: Any) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status, body = viewer_get(stack, f"/v1/products/{sku}/quality")
        return body if status == 200 and where(body) else None
    return _wait(f"quality of {sku}", probe, stack)


def pim(stack: RunningStack, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    status, answer = _post(f"{stack.connectors}/webhooks/pim", raw, shopstream_headers(PIM_SECRET, raw,
                                                                                        uuid.uuid4().hex))
    assert status == 200 and answer["status"] == "accepted", answer


def product(at: datetime, **changes: Any) -> dict[str, Any]:
    body = {"sku": SKU, "title": "Ledergürtel mit Stahlschnalle", "description": LONG, "family": "accessories",
            "slug": "ledergurtel", "price": {"amount": "40.00", "currency": "EUR"}, "channels": ["marketplace"],
            "attributes": [{"code": "material", "value": "leather"}],
            "images": [{"url": "https://cdn.example/belt.jpg", "width": 1200, "height": 1200, "alt": "Gürtel"}],
            "updated_at": at.isoformat()}
    body.update(changes)
    return body


def items(stack: RunningStack, query: str) -> list[dict[str, Any]]:
    status, body = viewer_get(stack, f"/v1/work-items?{query}")
    assert status == 200, body
    return list(body["items"])


def test_shopify_product_with_variants_gets_a_quality_document(stack: RunningStack) -> None:
    status, _ = post_shopify(stack.connectors, SHOPIFY_SECRET, "products/create", SHOPIFY_PRODUCT)
    assert status == 200
    doc = quality(stack, "SWE-MER-S-NAV", lambda d: True)
    assert doc["family"] == "apparel" and doc["complete"] is False
    assert doc["channels"]["ecommerce"]["de_DE"]["missing"] == ["material", "color"]
    assert doc["shop_price"] == {"amount": "89.0000", "currency": "EUR"}


def test_a_shopify_deletion_marks_every_variant_of_the_product_deleted(stack: RunningStack) -> None:
    product = shopify_product(id=901, handle="alpaca-scarf")
    for variant, sku in zip(product["variants"], ("E2E-SCARF-S", "E2E-SCARF-M"), strict=True):
        variant.update(sku=sku, product_id=901)
    status, _ = post_shopify(stack.connectors, SHOPIFY_SECRET, "products/create", product)
    assert status == 200
    assert quality(stack, "E2E-SCARF-M", lambda d: True)["deleted"] is False
    status, answer = post_shopify(stack.connectors, SHOPIFY_SECRET, "products/delete", {"id": 901})
    assert status == 200 and len(answer["events"]) == 2, answer
    for sku in ("E2E-SCARF-S", "E2E-SCARF-M"):
        gone = quality(stack, sku, lambda d: d["deleted"])
        assert gone["changes"][-1]["field"] == "deleted" and gone["changes"][-1]["who"] == "shopify"
    status, answer = post_shopify(stack.connectors, SHOPIFY_SECRET, "products/delete", {"id": 902})
    assert status == 202 and answer["status"] == "parked"  # never seen: parked with the reason, not dropped


def test_quality_falls_opens_an_item_and_fixing_closes_it(stack: RunningStack) -> None:
    t0 = datetime.now(UTC)
    pim(stack, {"products": [product(t0)]})
    complete = quality(stack, SKU, lambda d: d["complete"])
    assert complete["score"] == 100
    pim(stack, {"products": [product(t0 + timedelta(seconds=1), attributes=[{"code": "color", "value": "black"}])]})
    broken = quality(stack, SKU, lambda d: not d["complete"])
    de = broken["channels"]["marketplace"]["de_DE"]
    assert de["completeness"] < 100 and de["missing"] == ["material"] and broken["score"] < complete["score"]
    assert "required-attributes@marketplace/de_DE" in broken["blocking_failed"]
    [item] = _wait("the catalog item", lambda: items(stack, f"queue=catalog&subject={SKU}&status=open"), stack)
    assert item["subject_type"] == "product" and item["rule_ids"] == ["required-attributes"]
    pim(stack, {"products": [product(t0 + timedelta(seconds=2))]})
    quality(stack, SKU, lambda d: d["complete"])
    _wait("the item closed", lambda: viewer_get(stack, f"/v1/work-items/{item['id']}")[1].get("status")
          == "decided", stack)


def test_a_price_cut_waits_for_approval_and_a_promotion_runs_its_window(stack: RunningStack) -> None:
    outputs = Outputs(stack)
    t0 = datetime.now(UTC) + timedelta(seconds=10)
    outputs.wait("the first, in-policy price", "commands.shop", UpdatePrice, key=SKU)
    pim(stack, {"products": [product(t0, price={"amount": "16.00", "currency": "EUR"})]})
    [item] = _wait("the pricing item", lambda: items(stack, f"queue=pricing&subject={SKU}&status=open"), stack)
    assert item["kind"] == "price_change" and item["evidence"]["change_pct"] == "60.00"
    assert outputs.records("commands.shop", UpdatePrice, key=SKU, where=lambda c: c.price.amount == 16) == []
    status, _ = post_json(f"{stack.api}/v1/work-items/{item['id']}/decision", {"decision": "approve",
                          "note": "clearance"}, "reviewer")
    assert status == 202
    [approved] = outputs.wait("the approved price", "commands.shop", UpdatePrice, key=SKU,
                              where=lambda c: c.reason == "approved")
    assert approved.price.amount == Decimal("16.00") and approved.approved_by == TEST_TOKENS["reviewer"][0]
    time.sleep(2)
    assert len(outputs.records("commands.shop", UpdatePrice, key=SKU, where=lambda c: c.reason == "approved")) == 1
    start = datetime.now(UTC) + timedelta(seconds=4)
    pim(stack, {"promotions": [{"promotion_id": "E2E-PROMO", "skus": [SKU], "price": {"amount": "14.00",
                                "currency": "EUR"}, "starts_at": start.isoformat(),
                                "ends_at": (start + timedelta(seconds=6)).isoformat()}]})
    window = outputs.wait("the promotion's start and end", "commands.shop", UpdatePrice, key=SKU, count=2,
                          where=lambda c: c.promotion_id == "E2E-PROMO")
    on, off = sorted(window, key=lambda c: c.reason != "promotion_start")
    assert on.reason == "promotion_start" and on.price.amount == Decimal("14.00")
    assert off.reason == "promotion_end" and off.price.amount == Decimal("16.00")
