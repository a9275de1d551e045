"""The WebSocket server's hand-off of new connections to the sessions supervisor."""

from __future__ import annotations

import trio

from actors.ws_server import FrontendStats, _SessionNursery
from supervision import DynamicSupervisor


async def test_a_connection_while_the_sessions_supervisor_restarts_gets_503_and_is_closed() -> None:
    """No session can start: the client gets an HTTP 503 with Retry-After at once (so it retries
    instead of waiting out a handshake timeout), the socket is closed, and it counts as refused."""
    sessions = DynamicSupervisor(max_children=4)          # not running: as between two incarnations
    stats = FrontendStats()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    called: list[object] = []

    async def handler(stream: object) -> None:
        called.append(stream)

    async with trio.open_nursery() as nursery:
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
        _SessionNursery(sessions, stats, queue_size=10).start_soon(handler, server)
        received = b""
        with trio.fail_after(5):
            while chunk := await client.receive_some():
                received += chunk
        await client.aclose()
        nursery.cancel_scope.cancel()
    await listeners[0].aclose()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1" in head
    assert int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) == len(body) and body
    assert called == [] and stats.rejected_total == {"capacity": 1}
