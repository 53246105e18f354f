"""The review lists through the API against real Redis: admins edit, the worker's reader sees the edits."""

from __future__ import annotations

import redis

from shopstream.config import Settings
from shopstream.processors.review.list_store import read_changes
from shopstream.processors.review.rules import load_rules, with_list_changes
from tests.workers import api_client, auth_header


async def test_admins_edit_lists_and_the_worker_sees_the_edits(settings: Settings) -> None:
    async with api_client(settings, role="admin") as api:
        resp = await api.get("/v1/review/lists")
        assert resp.status == 200
        names = {entry["name"]: entry for entry in (await resp.json())["lists"]}
        assert set(names) == {"blocked_emails", "trusted_emails", "blocked_ips"}
        assert names["blocked_emails"] == {"name": "blocked_emails", "kind": "email", "entries": 0}
        for role in ("viewer", "reviewer", "operator"):
            assert (await api.get("/v1/review/lists", headers=auth_header(role))).status == 403
            assert (await api.post("/v1/review/lists/blocked_emails/entries", json={"entry": "x@y.z"},
                                   headers=auth_header(role))).status == 403
        resp = await api.post("/v1/review/lists/blocked_emails/entries", json={"entry": " Fraud@Example.com "})
        assert resp.status == 200 and await resp.json() == {"name": "blocked_emails", "entry": "fraud@example.com",
                                                             "entries": 1}
        await api.post("/v1/review/lists/blocked_emails/entries", json={"entry": "other@example.com"})
        resp = await api.delete("/v1/review/lists/blocked_emails/entries/other@example.com")
        assert resp.status == 200 and (await resp.json())["entries"] == 1
        doc = await (await api.get("/v1/review/lists/blocked_emails")).json()
        assert doc == {"name": "blocked_emails", "kind": "email", "entries": ["fraud@example.com"],
                       "added": ["fraud@example.com"], "removed": ["other@example.com"]}
        assert (await api.get("/v1/review/lists/nope")).status == 404
        assert (await api.post("/v1/review/lists/nope/entries", json={"entry": "a"})).status == 404
        assert (await api.post("/v1/review/lists/blocked_emails/entries", json={"entry": ""})).status == 400
        assert (await api.post("/v1/review/lists/blocked_emails/entries", json={"entry": "a\nb"})).status == 400

    client = redis.Redis.from_url(settings.redis_url)
    try:
        rules = load_rules()
        changes = read_changes(client, settings.redis_key_prefix, sorted(rules.lists))
        assert with_list_changes(rules, changes).lists["blocked_emails"] == {"fraud@example.com"}
    finally:
        client.close()
