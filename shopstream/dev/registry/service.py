"""Embedded Confluent-compatible schema registry over HTTP (aiohttp), for dev, demo and tests.

It speaks the REST subset that confluent-kafka's `SchemaRegistryClient` and its Avro
serializers use, with Confluent's JSON shapes, the `application/vnd.schemaregistry.v1+json`
content type and Confluent error bodies `{"error_code": N, "message": "..."}`.

Endpoints:
    GET    /                                                  {}
    GET    /healthz                                           {"status": "ok"}
    GET    /schemas/types                                     ["AVRO"]
    GET    /schemas/ids/{id}                                  {"schema", "schemaType"}  (?subject ignored)
    GET    /schemas/ids/{id}/versions                         [{"subject", "version"}]
    GET    /schemas/ids/{id}/subjects                         ["subject"]
    GET    /subjects                                          ?deleted, ?subjectPrefix
    POST   /subjects/{subject}                                lookup a schema under a subject
    DELETE /subjects/{subject}                                soft delete; ?permanent=true afterwards
    GET    /subjects/{subject}/versions                       ?deleted
    POST   /subjects/{subject}/versions                       register (idempotent) -> {"id", "version"}
    GET    /subjects/{subject}/versions/{version|latest|-1}   ?deleted
    GET    /subjects/{subject}/versions/{version}/schema      the bare schema text
    DELETE /subjects/{subject}/versions/{version}             soft delete; ?permanent=true afterwards
    POST   /compatibility/subjects/{subject}/versions/{v}     {"is_compatible"} (+ "messages" ?verbose=true)
    POST   /compatibility/subjects/{subject}/versions         against all versions the level names
    GET    /config, PUT /config                               global level
    GET    /config/{subject}, PUT, DELETE                     subject level (GET falls back to global)
    GET    /mode                                              {"mode": "READWRITE"}

Levels: NONE, BACKWARD (default), FORWARD, FULL and their _TRANSITIVE forms.

Deliberately left out: schema types other than AVRO (42201), schema references (42201: a
referencing schema cannot be validated alone), contexts, modes other than READWRITE, metadata
and rule sets (accepted and dropped), `normalize` (dedupe already ignores whitespace and key
order), guids, pagination (offset/limit), and clustering — one process owns the file.

Exposure: it is a dev tool. `serve` refuses a non-loopback address unless `allow_remote`
(SHOPSTREAM_REGISTRY_ALLOW_REMOTE). The administrative writes — `PUT /config[/{subject}]`,
`DELETE /config/{subject}`, `DELETE /subjects/...` — need `Authorization: Bearer <SHOPSTREAM_REGISTRY_TOKEN>`
(401 without it, 403 with another; refused altogether while no token is set). Registering and looking up
schemas stay open: every service does that with the plain Confluent client.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from shopstream.config import ConfigError, is_loopback
from shopstream.dev.registry.store import RegistryError, SchemaStore, VersionRef

__all__ = ["CONTENT_TYPE", "RegistryServer", "make_app", "serve", "start_in_thread"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
STORE_KEY: web.AppKey[SchemaStore] = web.AppKey("store", SchemaStore)
MAX_VERSION = 2**31 - 1


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, content_type=CONTENT_TYPE)


def _error(status: int, error_code: int, message: str) -> web.Response:
    return _json({"error_code": error_code, "message": message}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Confluent error body, which the client turns into its error."""
    try:
        return await handler(request)
    except RegistryError as exc:
        return _error(exc.status, exc.error_code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.status, exc.reason)
    except Exception:
        log.exception("registry request failed: %s %s", request.method, request.path)
        return _error(500, 50001, "Error in the backend data store")


def _flag(request: web.Request, name: str) -> bool:
    # the Python client sends str(bool), i.e. "True"/"False"
    return request.query.get(name, "false").lower() in ("true", "1")


def _version(raw: str) -> VersionRef:
    if raw in ("latest", "-1"):
        return "latest"
    try:
        number = int(raw)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_VERSION:
        raise RegistryError(
            42202,
            f"The specified version '{raw}' is not a valid version id. Allowed values are between "
            f'[1, {MAX_VERSION}] and the string "latest"',
        )
    return number


def _schema_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise RegistryError(40403, f"Schema {raw} not found") from None


async def _schema_body(request: web.Request) -> str:
    """The schema text of a register/lookup/compatibility request."""
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(400, f"Request body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise RegistryError(42201, "Invalid schema: the body needs a string field 'schema'")
    schema_type = body.get("schemaType") or "AVRO"
    if schema_type != "AVRO":
        raise RegistryError(42201, f"Invalid schema type {schema_type}: this registry holds AVRO only")
    if body.get("references"):
        raise RegistryError(42201, "Invalid schema: schema references are not supported")
    return body["schema"]


def _store(request: web.Request) -> SchemaStore:
    return request.app[STORE_KEY]


async def _root(request: web.Request) -> web.Response:
    return _json({})


async def _healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def _types(request: web.Request) -> web.Response:
    return _json(["AVRO"])


async def _mode(request: web.Request) -> web.Response:
    return _json({"mode": "READWRITE"})


async def _schema_by_id(request: web.Request) -> web.Response:
    text = _store(request).schema_by_id(_schema_id(request.match_info["id"]))
    return _json({"schema": text, "schemaType": "AVRO"})


async def _id_versions(request: web.Request) -> web.Response:
    pairs = _store(request).id_versions(_schema_id(request.match_info["id"]), _flag(request, "deleted"))
    return _json([{"subject": s, "version": v} for s, v in pairs])


async def _id_subjects(request: web.Request) -> web.Response:
    pairs = _store(request).id_versions(_schema_id(request.match_info["id"]), _flag(request, "deleted"))
    return _json(sorted({s for s, _ in pairs}))


async def _subjects(request: web.Request) -> web.Response:
    prefix = request.query.get("subjectPrefix", "")
    names = _store(request).subjects(deleted=_flag(request, "deleted"))
    return _json([s for s in names if s.startswith(prefix)])


async def _versions(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    return _json(_store(request).versions(subject, deleted=_flag(request, "deleted")))


async def _register(request: web.Request) -> web.Response:
    schema = await _schema_body(request)
    # the store fsyncs on write; keep that off the event loop
    registered = await asyncio.to_thread(_store(request).register, request.match_info["subject"], schema)
    return _json({"id": registered.id, "version": registered.version})


async def _lookup(request: web.Request) -> web.Response:
    schema = await _schema_body(request)
    found = _store(request).lookup(request.match_info["subject"], schema, deleted=_flag(request, "deleted"))
    return _json(found.to_json())


async def _get_version(request: web.Request) -> web.Response:
    version = _version(request.match_info["version"])
    found = _store(request).get_version(request.match_info["subject"], version, deleted=_flag(request, "deleted"))
    return _json(found.to_json())


async def _get_version_schema(request: web.Request) -> web.Response:
    version = _version(request.match_info["version"])
    found = _store(request).get_version(request.match_info["subject"], version)
    return _json(json.loads(found.schema))


async def _delete_subject(request: web.Request) -> web.Response:
    store, subject = _store(request), request.match_info["subject"]
    return _json(await asyncio.to_thread(store.delete_subject, subject, _flag(request, "permanent")))


async def _delete_version(request: web.Request) -> web.Response:
    store, subject = _store(request), request.match_info["subject"]
    version = _version(request.match_info["version"])
    return _json(await asyncio.to_thread(store.delete_version, subject, version, _flag(request, "permanent")))


async def _compatibility(request: web.Request) -> web.Response:
    schema = await _schema_body(request)
    raw = request.match_info.get("version")
    messages = _store(request).check(request.match_info["subject"], schema, None if raw is None else _version(raw))
    body: dict[str, Any] = {"is_compatible": not messages}
    if _flag(request, "verbose"):
        body["messages"] = messages
    return _json(body)


async def _get_config(request: web.Request) -> web.Response:
    return _json({"compatibilityLevel": _store(request).compatibility(request.match_info.get("subject"))})


async def _put_config(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise RegistryError(400, f"Request body is not JSON: {exc}") from exc
    level = body.get("compatibility") if isinstance(body, dict) else None
    if not isinstance(level, str):
        raise RegistryError(42203, 'Invalid compatibility level: the body needs {"compatibility": LEVEL}')
    store, subject = _store(request), request.match_info.get("subject")
    return _json({"compatibility": await asyncio.to_thread(store.set_compatibility, level, subject)})


async def _delete_config(request: web.Request) -> web.Response:
    store, subject = _store(request), request.match_info["subject"]
    return _json({"compatibilityLevel": await asyncio.to_thread(store.delete_compatibility, subject)})


def _admin_guard(token: str) -> Middleware:
    """Middleware: the administrative writes (compatibility levels, deletes) need the bearer token."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        admin = request.method == "DELETE" or (request.method == "PUT" and request.path.startswith("/config"))
        if not admin:
            return await handler(request)
        if not token:
            return _error(403, 40301, "administrative writes are disabled: set SHOPSTREAM_REGISTRY_TOKEN")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return _error(401, 40101, "administrative writes need Authorization: Bearer <token>")
        if not given.isascii() or not hmac.compare_digest(given.encode(), token.encode()):
            return _error(403, 40301, "the token does not allow administrative writes")
        return await handler(request)

    return guard


def make_app(store: SchemaStore, token: str = "") -> web.Application:
    """The registry's aiohttp application over `store`; `token` guards the administrative writes."""
    app = web.Application(middlewares=[_errors, _admin_guard(token)])
    app[STORE_KEY] = store
    app.add_routes(
        [
            web.get("/", _root),
            web.get("/healthz", _healthz),
            web.get("/mode", _mode),
            web.get("/schemas/types", _types),
            web.get("/schemas/ids/{id}", _schema_by_id),
            web.get("/schemas/ids/{id}/versions", _id_versions),
            web.get("/schemas/ids/{id}/subjects", _id_subjects),
            web.get("/subjects", _subjects),
            web.post("/subjects/{subject}", _lookup),
            web.delete("/subjects/{subject}", _delete_subject),
            web.get("/subjects/{subject}/versions", _versions),
            web.post("/subjects/{subject}/versions", _register),
            web.get("/subjects/{subject}/versions/{version}", _get_version),
            web.get("/subjects/{subject}/versions/{version}/schema", _get_version_schema),
            web.delete("/subjects/{subject}/versions/{version}", _delete_version),
            web.post("/compatibility/subjects/{subject}/versions", _compatibility),
            web.post("/compatibility/subjects/{subject}/versions/{version}", _compatibility),
            web.get("/config", _get_config),
            web.put("/config", _put_config),
            web.get("/config/{subject}", _get_config),
            web.put("/config/{subject}", _put_config),
            web.delete("/config/{subject}", _delete_config),
        ]
    )
    return app


def serve(host: str, port: int, storage_path: str, *, token: str = "", allow_remote: bool = False) -> None:
    """Run the registry in the foreground until SIGINT/SIGTERM (`shopstream registry serve`)."""
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(f"the embedded registry is a dev tool and refuses to listen on {host}: bind 127.0.0.1, "
                          "or set SHOPSTREAM_REGISTRY_ALLOW_REMOTE=true (and SHOPSTREAM_REGISTRY_TOKEN)")
    store = SchemaStore(storage_path)
    log.info("schema registry on http://%s:%d, storage %s", host, port, storage_path)
    web.run_app(make_app(store, token), host=host, port=port, print=None)


@dataclass
class RegistryServer:
    """A registry running on its own event loop in a daemon thread (tests, embedded stack)."""

    url: str
    _loop: asyncio.AbstractEventLoop
    _runner: web.AppRunner
    _thread: threading.Thread

    def stop(self) -> None:
        """Close the listener and end the thread."""
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def start_in_thread(store: SchemaStore, host: str = "127.0.0.1", port: int = 0, token: str = "") -> RegistryServer:
    """Serve `store` in a background thread; port 0 picks a free port (see `.url`)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="schema-registry", daemon=True)
    thread.start()

    async def start() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(make_app(store, token), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        return runner, runner.addresses[0][1]

    runner, bound = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    return RegistryServer(url=f"http://{host}:{bound}", _loop=loop, _runner=runner, _thread=thread)
