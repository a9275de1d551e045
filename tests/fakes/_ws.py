"""Generic fake WebSocket server on top of trio-websocket (private helper).

The protocol-specific fakes (RTDS, CLOB market channel) subclass :class:`FakeWsServer`
and implement :meth:`FakeWsServer._on_text`. Everything a test needs for fault injection
lives here:

* every outgoing frame goes through a per-connection queue drained by one sender task, so a
  ``send_*`` call never blocks on a slow client (unless ``wait=True``, the default, which
  waits until the frame was handed to the kernel or the connection died);
* the reader keeps draining ``get_message()`` (trio-websocket's reader task blocks when its
  message queue is full, which would otherwise freeze PING handling);
* handler exceptions are recorded in ``errors`` and never take the listener down;
* ``go_silent()``/``resume()``, ``go_silent_after(n)``, ``drop_connections()`` (TCP RST, no
  close frame), ``close_connections(code, reason)`` (a proper close frame),
  ``reject_next_handshakes(n, status)``, an optional scripted stream played to each new
  subscriber, and an optional "no application PING for N s" timeout.
"""

from __future__ import annotations

import enum
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
    wrap_client_stream,
)

log = logging.getLogger(__name__)

JsonValue = Any


def dumps(obj: JsonValue) -> str:
    """Compact JSON like the real servers send (no spaces, non-ASCII kept as UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class ScriptAction(enum.Enum):
    """Non-frame steps of a scripted stream (see :meth:`FakeWsServer.set_script`)."""

    SILENCE = "silence"  # this connection stops sending (socket stays open)
    DROP = "drop"  # abrupt TCP abort of this connection (RST, no close frame)
    CLOSE = "close"  # proper close frame (1000)


@attrs.frozen
class ScriptStep:
    """One step of a scripted stream: wait ``delay`` seconds (``trio.sleep``), then do ``frame``.

    ``frame`` is a raw text frame (``str``), a JSON value (``dict``/``list``; protocol fakes may
    post-process it, e.g. RTDS fills in ``connection_id``/``timestamp`` of an envelope), or a
    :class:`ScriptAction`.
    """

    delay: float
    frame: str | Mapping[str, Any] | Sequence[Any] | ScriptAction


class _Flush:
    """Queue marker: set ``event`` once every frame queued before it has been written."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = trio.Event()


@attrs.define(eq=False)
class FakeWsConnection:
    """Server-side view of one accepted WebSocket connection.

    Attributes are observations for tests; treat them as read-only.
    """

    id: int
    path: str
    remote: str
    ws: WebSocketConnection = attrs.field(repr=False)
    received: list[str | bytes] = attrs.field(factory=list, repr=False)  # every frame received
    sent: list[str] = attrs.field(factory=list, repr=False)  # every frame actually written
    suppressed: int = 0  # frames discarded because the connection was silent
    pings_received: int = 0  # application-level PING/ping text frames
    last_ping_at: float = 0.0  # trio.current_time() of the last PING (or of the accept)
    silent: bool = False
    budget: int | None = None  # data frames still allowed before going silent
    is_open: bool = True
    close_reason: str | None = None  # "client", "dropped", "closed 1013 ...", "error: ..."
    slow_consumer: bool = False
    _queue_send: trio.MemorySendChannel[Any] = attrs.field(default=None, repr=False)
    _queue_recv: trio.MemoryReceiveChannel[Any] = attrs.field(default=None, repr=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, repr=False)
    _done: trio.Event = attrs.field(factory=trio.Event, repr=False)
    _script_started: bool = attrs.field(default=False, repr=False)

    async def wait_closed(self) -> None:
        """Until the server-side handler for this connection has finished."""
        await self._done.wait()


class FakeWsServer:
    """Base class for a fake WebSocket server bound to 127.0.0.1 on an ephemeral port.

    Start it with ``await nursery.start(server.run)``; cancel the nursery to stop it.
    """

    #: frames that do not count against ``go_silent_after`` budgets (keepalives)
    KEEPALIVE_FRAMES: ClassVar[frozenset[str]] = frozenset({"PONG", ""})
    #: paths accepted; ``None`` accepts any path
    accepted_paths: ClassVar[frozenset[str] | None] = None
    name: ClassVar[str] = "ws"

    def __init__(self, *, send_queue_size: int = 10_000) -> None:
        self.host = "127.0.0.1"
        self.port: int = 0
        self.send_queue_size = send_queue_size
        #: every connection ever accepted, in order
        self.connections: list[FakeWsConnection] = []
        #: exceptions raised while handling client frames (the server keeps running)
        self.errors: list[BaseException] = []
        #: handshakes refused via :meth:`reject_next_handshakes` or a wrong path
        self.rejected_handshakes: int = 0
        #: server-wide silence: no frame (including PONG) is sent to anybody
        self.silent: bool = False
        #: if set, each *new* connection may send this many data frames, then goes silent
        self.silence_new_connections_after: int | None = None
        #: if set, a connection that has not sent an application PING for this many
        #: seconds suffers ``ping_timeout_action`` ("silent" like the real RTDS, or "close")
        self.ping_timeout: float | None = None
        self.ping_timeout_action: str = "silent"
        self._reject_queue: list[tuple[int, bytes]] = []
        self._script: list[ScriptStep] = []
        self._changed = trio.Event()
        self._next_id = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT`` (subclasses append their path)."""
        return f"ws://{self.host}:{self.port}"

    async def run(self, *, task_status: trio.TaskStatus[FakeWsServer] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled."""
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                lambda task_status: serve_websocket(
                    self._handle_request,
                    self.host,
                    0,
                    None,
                    message_queue_size=64,
                    connect_timeout=10,
                    disconnect_timeout=2,
                    task_status=task_status,
                )
            )
            self.port = server.port
            task_status.started(self)

    # ------------------------------------------------------------------ observations

    @property
    def open_connections(self) -> list[FakeWsConnection]:
        """Connections whose handler is still running."""
        return [c for c in self.connections if c.is_open]

    @property
    def connections_accepted(self) -> int:
        """Number of connections ever accepted (handshake completed)."""
        return len(self.connections)

    @property
    def pings_received(self) -> int:
        """Application-level ``PING``/``ping`` text frames received over all connections."""
        return sum(c.pings_received for c in self.connections)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Block until ``predicate()`` is true; re-checked after every state change."""
        while not predicate():
            await self._changed.wait()

    async def wait_connections(self, total: int = 1) -> None:
        """Until at least ``total`` connections have ever been accepted."""
        await self.wait_until(lambda: len(self.connections) >= total)

    async def wait_open(self, count: int = 1) -> None:
        """Until at least ``count`` connections are open at the same time."""
        await self.wait_until(lambda: len(self.open_connections) >= count)

    async def wait_pings(self, total: int = 1) -> None:
        """Until at least ``total`` application PINGs were received (all connections)."""
        await self.wait_until(lambda: self.pings_received >= total)

    # ------------------------------------------------------------------ fault injection

    def go_silent(self, connections: Sequence[FakeWsConnection] | None = None) -> None:
        """Stop sending anything (data, ``""``, PONG) but keep sockets open and keep reading.

        Without arguments the whole server goes silent (also for future connections);
        otherwise only the given connections do.
        """
        if connections is None:
            self.silent = True
        else:
            for c in connections:
                c.silent = True

    def resume(self) -> None:
        """Undo every kind of silence (server-wide, per connection, budgets, new-connection budget)."""
        self.silent = False
        self.silence_new_connections_after = None
        for c in self.connections:
            c.silent = False
            c.budget = None

    def go_silent_after(self, frames: int, *, new_connections: bool = False) -> None:
        """Every open connection may send ``frames`` more data frames, then goes silent.

        Keepalive replies (``PONG``, ``""``) do not count but stop too once silent. With
        ``new_connections=True`` every later connection gets the same budget.
        """
        for c in self.open_connections:
            c.budget = frames
        if new_connections:
            self.silence_new_connections_after = frames

    def reject_next_handshakes(self, n: int = 1, status: int = 503, body: bytes = b"") -> None:
        """The next ``n`` WebSocket upgrade requests get an HTTP ``status`` instead of 101."""
        self._reject_queue.extend([(status, body)] * n)

    async def drop_connections(self, connections: Sequence[FakeWsConnection] | None = None) -> int:
        """Abruptly kill connections: TCP RST (SO_LINGER 0 + close), no WebSocket close frame.

        The client's next receive fails (trio-websocket raises ``ConnectionClosed`` with code
        1006). Returns once the server-side handlers have finished. Returns the count dropped.
        """
        targets = list(self.open_connections if connections is None else connections)
        for c in targets:
            _abort_stream(c)
            c.close_reason = c.close_reason or "dropped"
            if c._nursery is not None:
                c._nursery.cancel_scope.cancel()
        for c in targets:
            await c.wait_closed()
        return len(targets)

    async def close_connections(
        self,
        code: int = 1000,
        reason: str | None = None,
        connections: Sequence[FakeWsConnection] | None = None,
    ) -> int:
        """Close with a real close frame, e.g. ``close_connections(1013, "slow consumer: send buffer full")``."""
        targets = list(self.open_connections if connections is None else connections)
        for c in targets:
            await self._close_conn(c, code, reason)
        for c in targets:
            await c.wait_closed()
        return len(targets)

    def set_script(self, steps: Sequence[ScriptStep | tuple[float, Any]]) -> None:
        """Play ``steps`` to every connection after its first successful subscribe.

        Each step is a :class:`ScriptStep` or a ``(delay_seconds, frame)`` tuple. Frames are
        sent regardless of the connection's subscriptions (they are that connection's stream).
        """
        self._script = [s if isinstance(s, ScriptStep) else ScriptStep(*s) for s in steps]

    # ------------------------------------------------------------------ sending

    def _enqueue(self, conn: FakeWsConnection, text: str) -> bool:
        """Queue one frame for ``conn``; returns False if it was suppressed or the conn is gone."""
        if not conn.is_open or conn._queue_send is None:
            return False
        is_keepalive = text in self.KEEPALIVE_FRAMES
        if not is_keepalive and conn.budget is not None:
            if conn.budget <= 0:
                conn.silent = True
            else:
                conn.budget -= 1
        if self.silent or conn.silent:
            conn.suppressed += 1
            return False
        try:
            conn._queue_send.send_nowait(text)
        except trio.WouldBlock:
            # The real CLOB server: "1013 slow consumer: send buffer full".
            if not conn.slow_consumer and conn._nursery is not None:
                conn.slow_consumer = True
                conn._nursery.start_soon(self._close_conn, conn, 1013, "slow consumer: send buffer full")
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    async def _flush(self, conns: Sequence[FakeWsConnection]) -> None:
        markers = []
        for c in conns:
            if not c.is_open or c._queue_send is None:
                continue
            m = _Flush()
            try:
                await c._queue_send.send(m)  # may wait if the queue is full: backpressure
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                continue
            markers.append((c, m))
        for _c, m in markers:
            # Set by the sender when reached, or by the connection's teardown, which
            # releases every marker still queued.
            await m.event.wait()

    async def flush(self) -> None:
        """Until everything queued so far was written to every open connection (or it died)."""
        await self._flush(self.open_connections)

    async def send_raw(
        self,
        text: str,
        *,
        connections: Sequence[FakeWsConnection] | None = None,
        wait: bool = True,
    ) -> int:
        """Send an arbitrary text frame (garbage, truncated JSON, ``[]``, ``42``...) to every open
        connection (or ``connections``). Returns the number of connections it was queued for."""
        targets = list(self.open_connections if connections is None else connections)
        n = sum(self._enqueue(c, text) for c in targets)
        if wait:
            await self._flush(targets)
        return n

    async def send_json(
        self,
        obj: JsonValue,
        *,
        connections: Sequence[FakeWsConnection] | None = None,
        wait: bool = True,
    ) -> int:
        """``send_raw(dumps(obj))`` without any routing or wrapping."""
        return await self.send_raw(dumps(obj), connections=connections, wait=wait)

    # ------------------------------------------------------------------ connection handling

    async def _handle_request(self, request: WebSocketRequest) -> None:
        # Anything escaping here would be raised inside trio.serve_listeners' handler nursery
        # and kill the whole listener, so everything is caught and recorded.
        try:
            if self._reject_queue:
                status, body = self._reject_queue.pop(0)
                self.rejected_handshakes += 1
                await request.reject(status, body=body or None)
                return
            path = request.path.split("?", 1)[0]
            if self.accepted_paths is not None and path not in self.accepted_paths:
                self.rejected_handshakes += 1
                await request.reject(404, body=b"Not Found")
                return
            ws = await request.accept()
        except ConnectionClosed:
            return
        except Exception as exc:  # pragma: no cover - defensive
            self.errors.append(exc)
            log.exception("%s: handshake failed", self.name)
            return
        conn = self._make_connection(ws, request)
        await self._serve_connection(conn)

    def _make_connection(self, ws: WebSocketConnection, request: WebSocketRequest) -> FakeWsConnection:
        self._next_id += 1
        remote = request.remote
        return self._connection_class()(
            id=self._next_id,
            path=request.path,
            remote=str(remote),
            ws=ws,
        )

    def _connection_class(self) -> type[FakeWsConnection]:
        return FakeWsConnection

    async def _serve_connection(self, conn: FakeWsConnection) -> None:
        send, recv = trio.open_memory_channel[Any](self.send_queue_size)
        conn._queue_send, conn._queue_recv = send, recv
        conn.last_ping_at = trio.current_time()
        conn.budget = self.silence_new_connections_after
        self.connections.append(conn)
        self._notify()
        try:
            async with trio.open_nursery() as nursery:
                conn._nursery = nursery
                nursery.start_soon(self._sender, conn)
                if self.ping_timeout is not None:
                    nursery.start_soon(self._ping_watchdog, conn)
                await self._reader(conn)
                nursery.cancel_scope.cancel()
        except Exception as exc:
            self.errors.append(exc)
            conn.close_reason = conn.close_reason or f"error: {exc!r}"
            log.exception("%s: connection %d handler failed", self.name, conn.id)
        finally:
            conn.is_open = False
            # trio-websocket's aclose() returns early once a close reason is set, so after an
            # abnormal closure (client vanished) the TCP socket would leak: close it here.
            _close_socket(conn)
            send.close()
            # release anybody waiting in flush()
            while True:
                try:
                    item = recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                if isinstance(item, _Flush):
                    item.event.set()
            recv.close()
            conn._done.set()
            self._notify()

    async def _reader(self, conn: FakeWsConnection) -> None:
        while True:
            try:
                message = await conn.ws.get_message()
            except ConnectionClosed:
                conn.close_reason = conn.close_reason or "client"
                return
            conn.received.append(message)
            try:
                if isinstance(message, str):
                    if message in ("PING", "ping"):
                        conn.pings_received += 1
                        conn.last_ping_at = trio.current_time()
                        self._enqueue(conn, "PONG")
                    else:
                        await self._on_text(conn, message)
                else:
                    await self._on_bytes(conn, message)
            except Exception as exc:
                self.errors.append(exc)
                log.exception("%s: error handling frame %r", self.name, message[:200])
            self._notify()

    async def _sender(self, conn: FakeWsConnection) -> None:
        async for item in conn._queue_recv:
            if isinstance(item, _Flush):
                item.event.set()
                continue
            if isinstance(item, ScriptAction):
                await self._apply_action(conn, item)
                continue
            try:
                await conn.ws.send_message(item)
            except ConnectionClosed:
                conn.close_reason = conn.close_reason or "client"
                assert conn._nursery is not None
                conn._nursery.cancel_scope.cancel()
                return
            conn.sent.append(item)

    async def _ping_watchdog(self, conn: FakeWsConnection) -> None:
        assert self.ping_timeout is not None
        while True:
            deadline = conn.last_ping_at + self.ping_timeout
            if trio.current_time() >= deadline:
                break
            await trio.sleep_until(deadline)
        if self.ping_timeout_action == "close":
            assert conn._nursery is not None
            conn._nursery.start_soon(self._close_conn, conn, 1011, "keepalive ping timeout")
        else:
            conn.silent = True

    async def _apply_action(self, conn: FakeWsConnection, action: ScriptAction) -> None:
        if action is ScriptAction.SILENCE:
            conn.silent = True
        elif action is ScriptAction.DROP:
            _abort_stream(conn)
            conn.close_reason = "dropped"
            if conn._nursery is not None:
                conn._nursery.cancel_scope.cancel()
        elif action is ScriptAction.CLOSE:
            await self._close_conn(conn, 1000, None)

    async def _close_conn(self, conn: FakeWsConnection, code: int, reason: str | None) -> None:
        conn.close_reason = f"closed {code} {reason or ''}".strip()
        with trio.move_on_after(2):
            try:
                await conn.ws.aclose(code, reason)
            except Exception:  # pragma: no cover - defensive
                pass
        _abort_stream(conn)
        if conn._nursery is not None:
            conn._nursery.cancel_scope.cancel()

    def _start_script(self, conn: FakeWsConnection) -> None:
        if not self._script or conn._script_started or conn._nursery is None:
            return
        conn._script_started = True
        conn._nursery.start_soon(self._play_script, conn, list(self._script))

    async def _play_script(self, conn: FakeWsConnection, steps: list[ScriptStep]) -> None:
        for step in steps:
            if step.delay > 0:
                await trio.sleep(step.delay)
            if isinstance(step.frame, ScriptAction):
                # goes through the queue so it happens after the frames before it
                if conn._queue_send is not None and conn.is_open:
                    try:
                        conn._queue_send.send_nowait(step.frame)
                    except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                        pass
                continue
            self._enqueue(conn, self._render_script_frame(conn, step.frame))

    # ------------------------------------------------------------------ hooks

    def _render_script_frame(self, conn: FakeWsConnection, frame: Any) -> str:
        return frame if isinstance(frame, str) else dumps(frame)

    async def _on_text(self, conn: FakeWsConnection, text: str) -> None:
        """Handle one non-PING text frame from the client."""

    async def _on_bytes(self, conn: FakeWsConnection, data: bytes) -> None:
        """Binary frames are recorded and ignored."""


def _close_socket(conn: FakeWsConnection) -> None:
    sock = getattr(conn.ws._stream, "socket", None)
    if sock is not None:
        sock.close()


def _abort_stream(conn: FakeWsConnection) -> None:
    """Close the TCP socket under ``conn`` with SO_LINGER=0 so the kernel sends RST.

    Synchronous on purpose: ``trio.SocketStream.aclose`` only closes the socket and
    checkpoints, and trio wakes any task blocked on the socket with ClosedResourceError.
    """
    stream = conn.ws._stream  # trio-websocket keeps the raw trio.SocketStream here
    sock = getattr(stream, "socket", None)
    if sock is None:  # pragma: no cover - not a SocketStream
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


@asynccontextmanager
async def open_ws_client(
    url: str,
    *,
    message_queue_size: int = 64,
    connect_timeout: float = 10.0,
    disconnect_timeout: float = 5.0,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> AsyncIterator[WebSocketConnection]:
    """A plain trio-websocket client connection (``ws://`` only) that never leaks its socket.

    ``trio_websocket.open_websocket_url`` (0.12.2) leaves the TCP socket open when the
    connection ended abnormally (1006: RST/EOF without a close frame) or when the handshake was
    rejected, so the GC later emits a ResourceWarning -- an error under this project's
    ``filterwarnings = error``. Here the test owns the stream (``wrap_client_stream``) and
    always closes it. Raises ``ConnectionRejected`` / ``ConnectionClosed`` unwrapped.
    """
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        raise ValueError(f"only ws:// URLs are supported here, got {url!r}")
    port = parts.port or 80
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    with trio.fail_after(connect_timeout):
        stream = await trio.open_tcp_stream(parts.hostname, port)
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(connect_timeout):
                ws = await wrap_client_stream(
                    nursery,
                    stream,
                    f"{parts.hostname}:{port}",
                    resource,
                    message_queue_size=message_queue_size,
                    extra_headers=extra_headers,
                )
            try:
                yield ws
            finally:
                with trio.move_on_after(disconnect_timeout) as scope:
                    scope.shield = True
                    await ws.aclose()
                await trio.aclose_forcefully(stream)
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        await trio.aclose_forcefully(stream)


def parse_json(text: str) -> tuple[bool, Any]:
    """``(True, value)`` if ``text`` is valid JSON, else ``(False, None)``. NaN/Infinity rejected."""
    try:
        return True, json.loads(text, parse_constant=_reject_constant)
    except (ValueError, TypeError):
        return False, None


def _reject_constant(name: str) -> float:
    raise ValueError(name)


__all__ = [
    "FakeWsConnection",
    "FakeWsServer",
    "ScriptAction",
    "ScriptStep",
    "dumps",
    "open_ws_client",
    "parse_json",
]
