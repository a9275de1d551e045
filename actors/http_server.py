"""The HTTP side: health, readiness, status, Prometheus metrics and the dashboard page.

A small ASGI app served by hypercorn's trio worker, as a supervised actor like every other:

========================  =================================================================
``GET /healthz``          200 ``{"status": "ok"}`` while the tree runs (this actor is in it)
``GET /readyz``           200 when feeds, database, hub and WebSocket server are ready,
                          else 503 with ``{"ready": false, "not_ready": [...]}``
``GET /status``           the status document (:func:`actors._status.status_document`)
``GET /metrics``          Prometheus text format (:mod:`actors._metrics`)
``GET /``                 the dashboard page (``web/index.html``)
``GET /static/<name>``    the page's files (``web/<name>``)
========================  =================================================================

With ``WS_AUTH_TOKEN`` set, every path but ``/healthz`` and ``/readyz`` needs the token: as
``?token=``, ``Authorization: Bearer``, ``X-Auth-Token``, or the cookie a token-carrying
request to ``/`` sets (so the page's own files and polls work); otherwise 401.
"""

from __future__ import annotations

import functools
import hmac
import logging
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import attrs
import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from supervision import ActorContext

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
_COOKIE = "pmi_token"
_OPEN_PATHS = frozenset({"/healthz", "/readyz"})


@attrs.frozen
class HttpConfig:
    host: str = "localhost"
    port: int = 8766
    auth_token: str | None = attrs.field(default=None, repr=False)
    web_dir: Path = WEB_DIR


@attrs.define
class HttpStats:
    #: The port actually bound (``HTTP_PORT=0`` picks one).
    bound_port: int | None = None


@attrs.frozen
class HttpSources:
    """What the endpoints read: the status document, the readiness verdict, the metrics registry."""

    status: Callable[[], dict[str, Any]]
    not_ready: Callable[[], list[str]]
    metrics: CollectorRegistry


Send = Callable[[dict[str, Any]], Any]


async def _respond(send: Send, status: int, body: bytes, content_type: str,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, data: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _respond(send, status, orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), "application/json", headers)


def _token(scope: dict[str, Any]) -> tuple[str | None, bool]:
    """The token a request presents, and whether it came in the query (not a cookie/header)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0], True
    headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    auth = headers.get(b"authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if b"x-auth-token" in headers:
        return headers[b"x-auth-token"], False
    for part in headers.get(b"cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == _COOKIE:
            return value, False
    return None, False


class HttpApp:
    """The ASGI application (see the module doc for the routes)."""

    def __init__(self, config: HttpConfig, sources: HttpSources) -> None:
        self.config = config
        self.sources = sources

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        await self._handle(scope, scope["path"], scope["method"], send)

    async def _handle(self, scope: dict[str, Any], path: str, method: str, send: Send) -> None:
        if method not in ("GET", "HEAD"):
            await _json(send, 405, {"error": "method not allowed"}, [(b"allow", b"GET, HEAD")])
            return
        cookie: list[tuple[bytes, bytes]] = []
        token = self.config.auth_token
        if token is not None and path not in _OPEN_PATHS:
            presented, in_query = _token(scope)
            if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
                await _json(send, 401, {"error": "missing or wrong token"},
                            [(b"www-authenticate", b'Bearer realm="polymarket-insights"')])
                return
            if in_query and path == "/":
                cookie = [(b"set-cookie", f"{_COOKIE}={presented}; HttpOnly; SameSite=Strict; Path=/".encode())]
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
            return
        if path == "/readyz":
            problems = self.sources.not_ready()
            status = 503 if problems else 200
            await _json(send, status, {"ready": not problems, "not_ready": problems})
            return
        if path == "/status":
            await _json(send, 200, self.sources.status())
            return
        if path == "/metrics":
            await _respond(send, 200, generate_latest(self.sources.metrics), CONTENT_TYPE_LATEST)
            return
        if path == "/" or path.startswith("/static/"):
            await self._file(send, "index.html" if path == "/" else path[len("/static/"):], cookie)
            return
        await _json(send, 404, {"error": "not found", "paths": ["/", "/healthz", "/readyz", "/status", "/metrics"]})

    async def _file(self, send: Send, name: str, headers: list[tuple[bytes, bytes]]) -> None:
        web_dir = self.config.web_dir
        # only plain file names directly in web/ (no traversal, no hidden files)
        candidate = web_dir / name
        if "/" in name or "\\" in name or name.startswith(".") or not candidate.is_file():
            await _json(send, 404, {"error": "not found"}, headers)
            return
        body = await trio.to_thread.run_sync(candidate.read_bytes)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "text/javascript"):
            content_type += "; charset=utf-8"
        await _respond(send, 200, body, content_type, headers)


def http_actor(config: HttpConfig, sources: HttpSources, stats: HttpStats) -> Callable[..., Any]:
    """The HTTP actor body: serves :class:`HttpApp` on ``config.host:config.port``.

    Ready once the port is bound (``stats.bound_port``; port 0 picks one), and logs the
    dashboard address.  Cancellation: a graceful stop closes the listener at once and gives
    requests in flight ``graceful_timeout`` (1 s); cancellation cuts them.  Errors: failing to bind fails
    the start; an endpoint that raises answers 500 and the server keeps running (hypercorn
    contains it), so a bug in one status field never takes the actor down.
    """
    app = HttpApp(config, sources)

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        hyper = Config()
        hyper.bind = [f"{config.host}:{config.port}"]
        hyper.accesslog = None
        hyper.errorlog = logging.getLogger("hypercorn.error")   # into loguru, like all stdlib logging
        hyper.graceful_timeout = 1.0
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(  # a graceful stop closes the listener at once
                functools.partial(serve, app, hyper, shutdown_trigger=ctx.stopping.wait))  # type: ignore[arg-type]
            stats.bound_port = int(binds[0].rsplit(":", 1)[1])
            ctx.log.info("dashboard on http://{host}:{port}/ (health /healthz, metrics /metrics)",
                         host=config.host, port=stats.bound_port)
            task_status.started()

    return run
