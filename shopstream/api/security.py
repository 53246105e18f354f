"""Authentication and roles on the API: one middleware, one table of which route needs which role.

Every route needs a role (`viewer` unless `ROUTE_ROLES` names another); `OPEN` lists the ones that
need none: liveness only (readiness and metrics are served on the admin port, `shopstream.health`).
No or an unknown token: 401 `{"error": "unauthorized", "reason"}` with `WWW-Authenticate: Bearer`; a
token without the role: 403 `{"error": "forbidden", "reason"}`. The principal is in
`request[PRINCIPAL_KEY]` for handlers that record who acted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from shopstream.auth import Principal, TokenStore, bearer

OPEN = frozenset({"/healthz"})
DEFAULT_ROLE = "viewer"
TOKENS_KEY: web.AppKey[TokenStore] = web.AppKey("api_tokens", TokenStore)
ROUTE_ROLES_KEY: web.AppKey[dict[tuple[str, str], str]] = web.AppKey("route_roles", dict)
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def required_role(request: web.Request) -> str | None:
    """The role the matched route needs (None: open, or no route matched and aiohttp answers 404/405)."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    route = resource.canonical
    if route in OPEN:
        return None
    return request.app[ROUTE_ROLES_KEY].get((request.method, route), DEFAULT_ROLE)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request without a valid token (401) or without the route's role (403)."""
    role = required_role(request)
    if role is None:
        return await handler(request)
    store = request.app[TOKENS_KEY]
    principal = store.authenticate(bearer(request.headers.get("Authorization")))
    if principal is None:
        reason = ("no API tokens configured (SHOPSTREAM_API_TOKENS_FILE)" if not store.configured
                  else "send Authorization: Bearer <token> with a valid token")
        return web.json_response({"error": "unauthorized", "reason": reason}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="shopstream"'})
    if not principal.allows(role):
        return web.json_response({"error": "forbidden", "reason": f"this needs the role {role}; "
                                  f"{principal.name} has {', '.join(sorted(principal.roles))}"}, status=403)
    request[PRINCIPAL_KEY] = principal
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    """The authenticated principal of a request (set by `authenticate`)."""
    principal = request.get(PRINCIPAL_KEY)
    assert isinstance(principal, Principal), "route served without authentication"
    return principal
