"""The review rules' lists through the API (role `admin`): read them, add and remove entries.

    GET    /v1/review/lists                         200 {"lists": [{"name", "kind", "file", "entries"}]}
    GET    /v1/review/lists/{name}                  200 {"name", "kind", "entries": [...], "added", "removed"}
    POST   /v1/review/lists/{name}/entries          {"entry": "..."} -> 200 {"name", "entry", "entries": n}
    DELETE /v1/review/lists/{name}/entries/{entry}  200 {"name", "entry", "entries": n}

The lists are the ones the rules file declares (SHOPSTREAM_REVIEW_RULES, default the shipped one); an
unknown name is 404, an empty or over-long entry 400, a rules file that does not load 503 with the
reason. Entries are normalised like the list files' (`rules.normalise`: lower case; addresses without
case and spacing). Edits live in Redis (`processors/review/list_store.py`) over the files, and the
review worker applies them within seconds to the orders it decides from then on.
"""

from __future__ import annotations

from aiohttp import web

from shopstream.api.security import ROUTE_ROLES_KEY
from shopstream.config import Settings
from shopstream.processors.review.list_store import AsyncListStore
from shopstream.processors.review.rules import RulesError, RuleSet, load_rules, normalise, with_list_changes

LISTS_KEY: web.AppKey[AsyncListStore] = web.AppKey("review_lists", AsyncListStore)
SETTINGS_KEY: web.AppKey[Settings] = web.AppKey("review_lists_settings", Settings)
ENTRY_MAX = 320


def _rules(request: web.Request) -> RuleSet | web.Response:
    try:
        return load_rules(request.app[SETTINGS_KEY].review_rules or None)
    except RulesError as exc:
        return web.json_response({"error": "review rules unavailable", "reason": str(exc)}, status=503)


async def _effective(request: web.Request, rules: RuleSet, name: str) -> tuple[list[str], list[str], list[str]]:
    added, removed = await request.app[LISTS_KEY].changes(name)
    entries = with_list_changes(rules, {name: (added, removed)}).lists[name]
    return sorted(entries), sorted(added), sorted(removed)


async def all_lists(request: web.Request) -> web.Response:
    rules = _rules(request)
    if isinstance(rules, web.Response):
        return rules
    out = []
    for name in sorted(rules.lists):
        entries, _, _ = await _effective(request, rules, name)
        out.append({"name": name, "kind": rules.list_kinds[name], "entries": len(entries)})
    return web.json_response({"lists": out, "rules_version": rules.version})


async def one_list(request: web.Request) -> web.Response:
    rules = _rules(request)
    if isinstance(rules, web.Response):
        return rules
    name = request.match_info["name"]
    if name not in rules.lists:
        return web.json_response({"error": "list not found", "name": name}, status=404)
    entries, added, removed = await _effective(request, rules, name)
    return web.json_response({"name": name, "kind": rules.list_kinds[name], "entries": entries, "added": added,
                              "removed": removed})


async def _edit(request: web.Request, entry: object, adding: bool) -> web.Response:
    rules = _rules(request)
    if isinstance(rules, web.Response):
        return rules
    name = request.match_info["name"]
    if name not in rules.lists:
        return web.json_response({"error": "list not found", "name": name}, status=404)
    if not isinstance(entry, str) or not entry.strip() or len(entry) > ENTRY_MAX or "\n" in entry:
        return web.json_response({"error": "invalid request", "reason": f"entry must be one line of 1 to {ENTRY_MAX} "
                                  "characters"}, status=400)
    value = normalise(entry, rules.list_kinds[name])
    store = request.app[LISTS_KEY]
    await (store.add(name, value) if adding else store.remove(name, value))
    entries, _, _ = await _effective(request, rules, name)
    return web.json_response({"name": name, "entry": value, "entries": len(entries)})


async def add_entry(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "invalid request", "reason": 'the body must be {"entry": "..."}'},
                                 status=400)
    return await _edit(request, body.get("entry") if isinstance(body, dict) else None, adding=True)


async def remove_entry(request: web.Request) -> web.Response:
    return await _edit(request, request.match_info["entry"], adding=False)


def add_routes(app: web.Application, settings: Settings) -> None:
    """The list routes, all for admins (the store is set with the app's Redis client)."""
    app[SETTINGS_KEY] = settings
    app.router.add_get("/v1/review/lists", all_lists)
    app.router.add_get("/v1/review/lists/{name}", one_list)
    app.router.add_post("/v1/review/lists/{name}/entries", add_entry)
    app.router.add_delete("/v1/review/lists/{name}/entries/{entry}", remove_entry)
    app[ROUTE_ROLES_KEY].update({
        ("GET", "/v1/review/lists"): "admin", ("GET", "/v1/review/lists/{name}"): "admin",
        ("POST", "/v1/review/lists/{name}/entries"): "admin",
        ("DELETE", "/v1/review/lists/{name}/entries/{entry}"): "admin"})
