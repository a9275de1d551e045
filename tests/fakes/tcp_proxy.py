"""A fault-injecting loopback TCP proxy (trio), to put in front of a real server in tests.

    async with open_tcp_proxy("127.0.0.1", 3306) as proxy:
        url = f"mysql://root@127.0.0.1:{proxy.port}/db"
        proxy.cut()             # close every open connection now (RST), keep accepting
        proxy.refuse()          # stop listening: new connections are refused (ECONNREFUSED)
        proxy.stall()           # accept and keep connections open, forward nothing either way
        proxy.pass_through()    # back to normal (listening again on the same port)

It listens on 127.0.0.1, on a free port chosen by the system (kept for the proxy's life).
While stalled, bytes already received are held and forwarded once the proxy passes again
(unless the connection was cut meanwhile), like a network path that went silent.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

PASS, REFUSE, STALL = "pass", "refuse", "stall"


@attrs.define
class ProxyStats:
    accepted: int = 0
    #: Connections closed by :meth:`TcpProxy.cut`.
    cut: int = 0
    #: Bytes forwarded client → server and server → client.
    bytes_up: int = 0
    bytes_down: int = 0
    #: Bytes read from clients, forwarded or (while stalled) held.
    received_up: int = 0


class TcpProxy:
    """See the module docstring; create it with :func:`open_tcp_proxy`."""

    def __init__(self, target_host: str, target_port: int, nursery: trio.Nursery) -> None:
        self.target = (target_host, target_port)
        self.mode = PASS
        self.port = 0
        self.stats = ProxyStats()
        self._nursery = nursery
        self._connections: set[trio.CancelScope] = set()
        self._streams: set[trio.SocketStream] = set()
        self._passing = trio.Event()
        self._passing.set()
        self._listener_scope: trio.CancelScope | None = None

    @property
    def active(self) -> int:
        """Connections currently open through the proxy."""
        return len(self._connections)

    # -- modes ----------------------------------------------------------------------------------

    def pass_through(self) -> None:
        """Forward again; listen again if refusing."""
        previous, self.mode = self.mode, PASS
        self._passing.set()
        if previous == REFUSE:
            self._nursery.start_soon(self._listen)

    def stall(self) -> None:
        """Accept connections (and keep the existing ones) but forward nothing."""
        if self.mode == REFUSE:
            self._nursery.start_soon(self._listen)
        self.mode = STALL
        self._passing = trio.Event()

    def refuse(self) -> None:
        """Close the listening socket: connecting gets "connection refused".  Open connections
        are kept (add :meth:`cut` for a full outage)."""
        if self.mode == REFUSE:
            return
        if self.mode == STALL:
            self._passing.set()
        self.mode = REFUSE
        if self._listener_scope is not None:
            self._listener_scope.cancel()

    def cut(self) -> int:
        """Reset every open connection now; returns how many were cut."""
        for stream in list(self._streams):
            _reset(stream)
        scopes = list(self._connections)
        for scope in scopes:
            scope.cancel()
        self.stats.cut += len(scopes)
        return len(scopes)

    # -- internals ------------------------------------------------------------------------------

    async def _listen(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._listener_scope = scope
            sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            await sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
            self.port = sock.getsockname()[1]
            listener = trio.SocketListener(sock)
            async with listener:
                task_status.started()
                while True:
                    stream = await listener.accept()
                    self.stats.accepted += 1
                    self._nursery.start_soon(self._serve, stream)

    async def _serve(self, client: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self._connections.add(scope)
            self._streams.add(client)
            try:
                async with client:
                    await self._passing.wait()
                    try:
                        upstream = await trio.open_tcp_stream(*self.target)
                    except OSError:
                        _reset(client)
                        return
                    self._streams.add(upstream)
                    try:
                        async with upstream, trio.open_nursery() as nursery:
                            nursery.start_soon(self._pump, client, upstream, "bytes_up", nursery.cancel_scope)
                            nursery.start_soon(self._pump, upstream, client, "bytes_down", nursery.cancel_scope)
                    finally:
                        self._streams.discard(upstream)
            finally:
                self._connections.discard(scope)
                self._streams.discard(client)

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream, counter: str,
                    done: trio.CancelScope) -> None:
        try:
            while True:
                data = await source.receive_some(65536)
                if not data:
                    break
                if counter == "bytes_up":
                    self.stats.received_up += len(data)
                await self._passing.wait()
                await sink.send_all(data)
                setattr(self.stats, counter, getattr(self.stats, counter) + len(data))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        done.cancel()


def _reset(stream: trio.SocketStream) -> None:
    """Make the coming close send RST rather than FIN (an abrupt network failure)."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


@asynccontextmanager
async def open_tcp_proxy(target_host: str, target_port: int) -> AsyncIterator[TcpProxy]:
    """A proxy to ``target_host:target_port`` listening on 127.0.0.1 (``proxy.port``)."""
    async with trio.open_nursery() as nursery:
        proxy = TcpProxy(target_host, target_port, nursery)
        await nursery.start(proxy._listen)
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()
