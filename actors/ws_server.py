"""The frontend WebSocket server and one session actor per connected client.

The server (trio-websocket) accepts connections; each connection runs as a temporary child
of the ``sessions`` dynamic supervisor, so a crashing session is contained and logged, never
taking the server down.  Protocol: :mod:`protocols.client`.
"""

from __future__ import annotations

import contextlib
import contextvars
import hmac
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from protocols.client import (
    EVERYTHING,
    ClientError,
    Ping,
    Resume,
    Subscribe,
    encode,
    error_frame,
    parse_client_message,
)
from supervision import ActorContext, DynamicSupervisor, SupervisorNotRunning, TooManyChildren

from ._outbox_stream import OutboxStream
from .hub import ClientQueue, HubState

SERVER_NAME = "polymarket-insights"

#: The answer to a handshake that arrives while no session can be started.
_BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n"
                  b"Retry-After: 1\r\nConnection: close\r\n\r\nrestarting; retry shortly\n")

_session_ctx: contextvars.ContextVar[ActorContext | None] = contextvars.ContextVar("session_ctx", default=None)
_session_queue: contextvars.ContextVar[ClientQueue | None] = contextvars.ContextVar("session_queue", default=None)


@attrs.frozen
class FrontendConfig:
    host: str = "localhost"
    port: int = 8765
    version: str = "0.1.0"
    auth_token: str | None = attrs.field(default=None, repr=False)
    allowed_origins: frozenset[str] = frozenset()
    max_connections: int = 2000
    max_message_bytes: int = 65536
    queue_size: int = 1000
    heartbeat_interval: float = 20.0
    idle_timeout: float = 60.0
    send_timeout: float = 10.0
    #: More than this many bad or excess client messages within ``flood_window`` closes the connection.
    flood_limit: int = 30
    flood_window: float = 10.0


@attrs.define
class FrontendStats:
    connections_total: int = 0
    rejected_total: dict[str, int] = attrs.field(factory=dict)
    client_errors_total: dict[str, int] = attrs.field(factory=dict)
    disconnects_total: dict[str, int] = attrs.field(factory=dict)
    bound_port: int | None = None

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


class _SessionNursery:
    """What trio-websocket spawns connections into: the sessions dynamic supervisor.

    Each connection's socket stream is wrapped in an :class:`OutboxStream` around the client's
    :class:`ClientQueue`, created here, before the handshake, so that every byte to the client
    goes through that queue.
    """

    def __init__(self, sessions: DynamicSupervisor, stats: FrontendStats, queue_size: int) -> None:
        self.sessions = sessions
        self.stats = stats
        self.queue_size = queue_size

    def start_soon(self, fn: Callable[..., Awaitable[None]], *args: Any, name: object = None) -> None:
        stream = args[0] if args and isinstance(args[0], trio.abc.AsyncResource) else None

        async def run(ctx: ActorContext) -> None:
            _session_ctx.set(ctx)
            call_args = args
            closing = stream
            if isinstance(stream, trio.SocketStream):
                queue = ClientQueue(self.queue_size, EVERYTHING, name=ctx.path, fd=stream.socket.fileno())
                closing = OutboxStream(stream, queue)
                _session_queue.set(queue)
                call_args = (closing, *args[1:])
            try:
                await fn(*call_args)
            finally:
                # trio-websocket does not close the socket of a connection cancelled mid-way
                # (a killed session): close it ourselves, or the descriptor leaks
                if closing is not None:
                    await trio.aclose_forcefully(closing)

        try:
            self.sessions.start_child(run, name="client")
        except (TooManyChildren, SupervisorNotRunning):
            self.stats.count(self.stats.rejected_total, "capacity")
            if stream is not None:
                if self.sessions._nursery is not None:
                    self.sessions._nursery.start_soon(trio.aclose_forcefully, stream)
                else:  # the sessions supervisor is restarting: answer 503 (so the client
                    # retries at once instead of waiting for a handshake) and close
                    sock = getattr(stream, "socket", None)
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            os.write(sock.fileno(), _BUSY_RESPONSE)
                        sock.close()


def _header(request: WebSocketRequest, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in request.headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def _presented_token(request: WebSocketRequest) -> str | None:
    query = parse_qs(urlsplit(request.path).query)
    if query.get("token"):
        return query["token"][0]
    auth = _header(request, "authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return _header(request, "x-auth-token")


async def run_session(request: WebSocketRequest, hub: HubState, config: FrontendConfig, stats: FrontendStats) -> None:
    """One client, from handshake to close.

    Checks the token and origin before accepting (401/403 on the handshake), sends
    ``hello``, then runs a reader (always draining, so pings and close frames flow), a writer
    (sends what the hub's inline writes left queued; a socket that takes nothing for
    ``send_timeout`` closes) and a heartbeat (a WebSocket ping every ``heartbeat_interval``;
    no pong within ``idle_timeout`` closes).

    Errors: bad client input gets an ``error`` frame; a flood, a lagging client, a send
    timeout or a missed heartbeat closes the connection.  Any other exception is a bug,
    contained by the dynamic supervisor.
    """
    ctx = _session_ctx.get()
    log = ctx.log if ctx is not None else None
    if config.auth_token is not None:
        token = _presented_token(request)
        if token is None or not hmac.compare_digest(token.encode(), config.auth_token.encode()):
            stats.count(stats.rejected_total, "auth")
            await request.reject(401, body=b"missing or wrong token\n")
            return
    origin = _header(request, "origin")
    if config.allowed_origins and origin is not None and origin not in config.allowed_origins:
        stats.count(stats.rejected_total, "origin")
        await request.reject(403, body=b"origin not allowed\n")
        return
    if len(hub.clients) >= config.max_connections:
        stats.count(stats.rejected_total, "capacity")
        await request.reject(503, body=b"too many connections\n")
        return
    ws = await request.accept()
    stats.connections_total += 1
    queue = _session_queue.get()
    if queue is None:   # not a plain TCP stream: no direct writes (the writer task sends)
        raise TypeError("a client session needs a trio.SocketStream")
    hub.register(queue)
    reason = "ended by the server"   # (cancelled: the server stops, or the session was killed)
    try:
        await ws.send_message(encode("hello", {
            "server": SERVER_NAME, "version": config.version, "seq": hub.seq, "oldest_seq": hub.oldest_seq,
            "heartbeat_interval": config.heartbeat_interval}))
        async with trio.open_nursery() as nursery:
            async def end(why: str) -> None:
                nonlocal reason
                reason = why
                nursery.cancel_scope.cancel()

            nursery.start_soon(_reader, ws, queue, hub, config, stats, end)
            nursery.start_soon(_writer, queue, config, end)
            nursery.start_soon(_heartbeat, ws, config, end)
            why = await queue.wait_kicked()
            await end(why)
    except ConnectionClosed:
        reason = "closed by client"
    finally:
        hub.unregister(queue)
        stats.count(stats.disconnects_total, reason)
        if log is not None:
            log.debug("client gone: {why}", why=reason)
        if not ws.closed:
            code = {"lagging": 1013, "flood": 1008, "send timeout": 1013, "heartbeat timeout": 1001,
                    "ended by the server": 1001}.get(reason, 1000)
            with trio.move_on_after(1) as cs:
                cs.shield = True
                try:
                    await ws.aclose(code, reason)
                except ConnectionClosed:
                    pass


async def _reader(ws: WebSocketConnection, queue: ClientQueue, hub: HubState, config: FrontendConfig,
                  stats: FrontendStats, end: Callable[[str], Awaitable[None]]) -> None:
    strikes: list[float] = []
    while True:
        try:
            text = await ws.get_message()
        except ConnectionClosed:
            await end("closed by client")
            return
        now = trio.current_time()
        strikes = [t for t in strikes if t > now - config.flood_window]
        try:
            message = parse_client_message(text, max_bytes=config.max_message_bytes)
        except ClientError as exc:
            stats.count(stats.client_errors_total, exc.code)
            strikes.append(now)
            if len(strikes) > config.flood_limit:
                await end("flood")
                return
            queue.control(error_frame(exc.code, exc.message))
            continue
        if isinstance(message, Ping):
            queue.control(encode("pong", {"seq": hub.seq}))
        elif isinstance(message, Subscribe):
            queue.subscription = message.subscription
            queue.control(encode("subscribed", message.subscription.as_data()))
        elif isinstance(message, Resume):
            entries, complete = hub.since(message.since, queue.subscription)
            if not complete:
                queue.control(error_frame(
                    "resume_gap", f"seq {message.since} is older than the oldest held; replaying from "
                    f"{hub.oldest_seq}", oldest_seq=hub.oldest_seq))
            queue.replace_with(entries)
            queue.last_seq_sent = min(queue.last_seq_sent, message.since)


async def _writer(queue: ClientQueue, config: FrontendConfig, end: Callable[[str], Awaitable[None]]) -> None:
    """Sends what the hub's inline writes left queued (see :meth:`ClientQueue.run_writer`)."""
    try:
        await queue.run_writer(config.send_timeout)
    except trio.TooSlowError:
        await end("send timeout")
    except trio.BrokenResourceError:
        await end("closed by client")


async def _heartbeat(ws: WebSocketConnection, config: FrontendConfig, end: Callable[[str], Awaitable[None]]) -> None:
    while True:
        await trio.sleep(config.heartbeat_interval)
        try:
            with trio.fail_after(config.idle_timeout):
                await ws.ping()
        except trio.TooSlowError:
            await end("heartbeat timeout")
            return
        except ConnectionClosed:
            await end("closed by client")
            return


def ws_server_actor(config: FrontendConfig, hub: HubState, sessions: DynamicSupervisor,
                    stats: FrontendStats) -> Callable[..., Any]:
    """The WebSocket server actor body: listens on ``config.host:config.port``.

    Ready once the port is bound (``stats.bound_port`` then holds it; port 0 picks one).
    Cancellation: stops listening; sessions live on under their own supervisor.
    Errors: failing to bind fails the start (the service exits with that one line).
    """
    nursery_adapter = _SessionNursery(sessions, stats, config.queue_size)

    async def handler(request: WebSocketRequest) -> None:
        await run_session(request, hub, config, stats)

    async def run(ctx: ActorContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(lambda task_status: serve_websocket(
                handler, config.host, config.port, None, handler_nursery=nursery_adapter,  # type: ignore[arg-type]
                max_message_size=max(config.max_message_bytes * 4, 1 << 20), message_queue_size=8,
                task_status=task_status))
            stats.bound_port = server.port
            ctx.log.info("WebSocket feed on ws://{host}:{port}", host=config.host, port=server.port)
            task_status.started()

    return run
