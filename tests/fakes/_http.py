"""Generic fake REST server: a tiny ASGI app served by hypercorn's trio worker (private helper).

Real HTTP/1.1 over a loopback socket. Subclasses implement :meth:`FakeHttpServer.route`.
Fault injection shared by the Gamma and Data API fakes:

* :meth:`FakeHttpServer.fail_next` — the next ``n`` requests get ``status`` (429 with a
  ``Retry-After`` header, 500, 503...) and a JSON error body;
* :attr:`FakeHttpServer.delay` — seconds (``trio.sleep``, so a MockClock drives it) before
  every answer; :meth:`FakeHttpServer.delay_next` for a one-off;
* :meth:`FakeHttpServer.garbage_next` / :attr:`FakeHttpServer.garbage` — 200 with a
  ``application/json`` content type and a body that is not JSON;
* :meth:`FakeHttpServer.disconnect_next` — headers and half the body, then the connection
  is torn down (client sees an incomplete body / ``RemoteProtocolError``).
"""

from __future__ import annotations

import json
import logging
from functools import partial
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qsl

import attrs
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

log = logging.getLogger(__name__)


class RecordedRequest(NamedTuple):
    """One request seen by a fake REST server: ``(path, params)``.

    ``params`` maps each query parameter to the list of its values in order, so a repeated
    parameter (``?a=1&a=2``) and a comma list (``?a=1,2``) stay distinguishable.
    """

    path: str
    params: dict[str, list[str]]

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        values = self.params.get(name)
        return values[0] if values else default


@attrs.frozen
class Response:
    """What a route returns."""

    status: int = 200
    body: Any = None  # JSON-serialisable value, or ``bytes`` sent verbatim
    headers: Mapping[str, str] = attrs.field(factory=dict)

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


@attrs.frozen
class Fault:
    """A queued fault (see :meth:`FakeHttpServer.fail_next` and friends)."""

    kind: str  # "status" | "garbage" | "disconnect" | "delay"
    status: int = 503
    retry_after: float | int | str | None = None
    body: Any = None
    delay: float = 0.0
    path_prefix: str | None = None


#: default garbage body: an HTML error page served as JSON (what a CDN hiccup looks like)
GARBAGE_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"


class FakeHttpServer:
    """Base class: hypercorn on 127.0.0.1:0 with request recording and fault injection."""

    name: ClassVar[str] = "http"

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        #: every request seen, in arrival order, including failed ones
        self.requests: list[RecordedRequest] = []
        #: seconds to ``trio.sleep`` before answering every request
        self.delay: float = 0.0
        #: when true every request gets a 200 with :attr:`garbage_body`
        self.garbage: bool = False
        self.garbage_body: bytes = GARBAGE_BODY
        #: exceptions raised by routes (answered with 500; the server keeps running)
        self.errors: list[BaseException] = []
        self._faults: list[Fault] = []
        self._changed = trio.Event()
        self._shutdown = trio.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        retry_after: float | int | str | None = None,
        body: Any = None,
        *,
        path: str | None = None,
    ) -> None:
        """The next ``n`` requests (only those whose path starts with ``path``, if given) are
        answered with ``status``, a ``Retry-After`` header if ``retry_after`` is not None, and
        ``body`` (default: this API's JSON error shape)."""
        self._faults.extend(
            [Fault("status", status=status, retry_after=retry_after, body=body, path_prefix=path)] * n
        )

    def garbage_next(self, n: int = 1, body: bytes | None = None, *, path: str | None = None) -> None:
        """The next ``n`` requests get 200, ``content-type: application/json`` and a non-JSON body."""
        self._faults.extend([Fault("garbage", body=body, path_prefix=path)] * n)

    def disconnect_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` requests get their headers and part of the body, then the connection dies."""
        self._faults.extend([Fault("disconnect", path_prefix=path)] * n)

    def delay_next(self, n: int = 1, seconds: float = 1.0, *, path: str | None = None) -> None:
        """The next ``n`` requests wait ``seconds`` (``trio.sleep``) before being answered normally."""
        self._faults.extend([Fault("delay", delay=seconds, path_prefix=path)] * n)

    def clear_faults(self) -> None:
        """Forget queued faults and switch off ``delay``/``garbage``."""
        self._faults.clear()
        self.delay = 0.0
        self.garbage = False

    @property
    def pending_faults(self) -> int:
        return len(self._faults)

    # ------------------------------------------------------------------ observations

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Requests whose path equals ``path``."""
        return [r for r in self.requests if r.path == path]

    async def wait_requests(self, total: int = 1, path: str | None = None) -> None:
        """Until at least ``total`` requests (to ``path`` if given) have arrived."""
        while len(self.requests if path is None else self.requests_to(path)) < total:
            await self._changed.wait()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ------------------------------------------------------------------ to override

    def route(self, method: str, path: str, params: dict[str, list[str]]) -> Response:
        """Answer one request (no faults applied here). Default: 404."""
        return self.error_response(404, "not found", path=path)

    def error_response(
        self,
        status: int,
        message: str,
        *,
        path: str = "",
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        """This API's error body for ``path``. Default ``{"error": message}``."""
        return Response(status, {"error": message, **extra}, headers or {})

    # ------------------------------------------------------------------ serving

    async def run(self, *, task_status: trio.TaskStatus[FakeHttpServer] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled (or until :meth:`shutdown`)."""
        config = Config()
        config.bind = [f"{self.host}:0"]
        config.accesslog = None
        config.errorlog = None  # route errors are recorded in self.errors instead
        config.graceful_timeout = 0.5
        config.keep_alive_timeout = 3600  # don't let a MockClock autojump close idle keep-alives
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                partial(serve, self._asgi, config, shutdown_trigger=self._shutdown.wait)
            )
            self.port = int(binds[0].rsplit(":", 1)[1])
            task_status.started(self)

    async def shutdown(self) -> None:
        self._shutdown.set()

    async def _asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
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
        # drain the request body
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        path: str = scope["path"]
        params: dict[str, list[str]] = {}
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            params.setdefault(k, []).append(v)
        self.requests.append(RecordedRequest(path, params))
        self._notify()

        if self.delay > 0:
            await trio.sleep(self.delay)
        fault = self._take_fault(path)
        if fault is not None and fault.kind == "delay":
            await trio.sleep(fault.delay)
            fault = None

        if self.garbage or (fault is not None and fault.kind == "garbage"):
            body = (fault.body if fault is not None and fault.body is not None else None) or self.garbage_body
            await _send(send, Response(200, body, {"content-type": "application/json"}))
            return
        if fault is not None and fault.kind == "disconnect":
            body = b'[{"proxyWallet":"0x' + b"0" * 200
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"100000")],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": True})
            raise _Disconnect  # hypercorn closes the connection mid-body
        if fault is not None and fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = str(fault.retry_after)
            if fault.body is not None:
                response = Response(fault.status, fault.body, headers)
            else:
                response = self.error_response(fault.status, _reason(fault.status), path=path, headers=headers)
            await _send(send, response)
            return
        try:
            response = self.route(scope["method"], path, params)
        except Exception as exc:
            self.errors.append(exc)
            log.exception("%s: route failed", self.name)
            response = self.error_response(500, "internal error (fake)", path=path)
        await _send(send, response)

    def _take_fault(self, path: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.path_prefix is None or path.startswith(fault.path_prefix):
                return self._faults.pop(i)
        return None


class _Disconnect(Exception):
    """Raised inside the ASGI app to make hypercorn abort a half-sent response."""


async def _send(send: Callable[..., Any], response: Response) -> None:
    body = response.encode()
    headers = {"content-type": "application/json", **{k.lower(): v for k, v in response.headers.items()}}
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.encode(), str(v).encode()) for k, v in headers.items()]
            + [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Callable[..., Any]) -> bytes | None:
    """The whole request body of an ASGI HTTP request; None if the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _reason(status: int) -> str:
    return {
        400: "bad request",
        404: "not found",
        429: "Too Many Requests",
        500: "internal server error",
        502: "bad gateway",
        503: "service unavailable",
    }.get(status, f"HTTP {status}")


def parse_bool(value: str | None, default: bool | None = None) -> bool | None:
    """Query-string boolean as the real APIs read it ("true"/"false", "1"/"0")."""
    if value is None or value == "":
        return default
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ValueError(f"invalid boolean {value!r}")


def multi(params: Mapping[str, Sequence[str]], *names: str, split_commas: bool = True) -> list[str]:
    """All values of any of ``names``: repeated params, each optionally comma-split."""
    out: list[str] = []
    for name in names:
        for value in params.get(name, ()):
            if split_commas:
                out.extend(p.strip() for p in value.split(",") if p.strip())
            elif value:
                out.append(value)
    return out
