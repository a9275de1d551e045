"""The stream a client's WebSocket connection runs over: reads from its socket, writes through
its :class:`~actors.hub.ClientQueue` (private helper of :mod:`actors.ws_server`).

trio-websocket writes its own frames (handshake, ``hello``, pings, pongs, close) with
``send_all``; the hub writes broadcasts straight into the client's queue.  Routing both through
the one queue keeps every frame whole and in order, and lets the hub hand a broadcast to the
kernel without a task switch (see :class:`~actors.hub.ClientQueue`).
"""

from __future__ import annotations

import math

import trio

from .hub import ClientQueue

#: First byte of a close frame (FIN + opcode 8; control frames are never fragmented).  The
#: handshake's HTTP response, the only other thing written here, starts with ASCII.
_CLOSE_FRAME_START = 0x88


class OutboxStream(trio.abc.HalfCloseableStream):
    """A :class:`trio.SocketStream` whose writes go through ``queue``.

    ``send_all`` returns once its bytes are handed to the kernel; it waits as long as that
    takes (the session's writer and heartbeat decide when a client is too slow, and close it).
    Closing the stream detaches the queue first, so nothing writes to the descriptor after it
    is closed (its number may be reused at once).
    """

    def __init__(self, inner: trio.SocketStream, queue: ClientQueue) -> None:
        self.inner = inner
        self.queue = queue

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if data and data[0] == _CLOSE_FRAME_START:
            self.queue.closing = True       # no broadcast may follow a close frame
        await self.queue.send_and_wait(bytes(data), math.inf)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        self.queue.detach()
        await self.inner.aclose()
