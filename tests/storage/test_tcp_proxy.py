"""The fault-injecting TCP proxy the outage tests rely on, against a local echo server."""

from __future__ import annotations

import functools

import pytest
import trio

from tests.fakes.tcp_proxy import open_tcp_proxy


async def _echo(stream: trio.SocketStream) -> None:
    try:
        async for data in stream:
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass


async def _roundtrip(stream: trio.SocketStream, data: bytes, expect: int | None = None) -> bytes:
    """Send ``data``, then read ``expect`` bytes (default ``len(data)``)."""
    await stream.send_all(data)
    received = b""
    with trio.fail_after(2):
        while len(received) < (len(data) if expect is None else expect):
            chunk = await stream.receive_some()
            if not chunk:
                break
            received += chunk
    return received


async def test_pass_cut_refuse_stall(nursery: trio.Nursery) -> None:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    async with open_tcp_proxy("127.0.0.1", port) as proxy:
        a = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        assert await _roundtrip(a, b"hello") == b"hello"

        proxy.stall()
        b = await trio.open_tcp_stream("127.0.0.1", proxy.port)  # accepted, but nothing goes through
        await a.send_all(b"one")
        await b.send_all(b"two")
        with trio.move_on_after(0.2) as quiet:
            await a.receive_some()
        assert quiet.cancelled_caught
        proxy.pass_through()  # held bytes go through
        assert await _roundtrip(a, b"!", 4) == b"one!"
        assert await _roundtrip(b, b"!", 4) == b"two!"

        assert proxy.cut() == 2
        with trio.fail_after(2):
            with pytest.raises(trio.BrokenResourceError):
                while await a.receive_some():
                    pass
        await a.aclose()
        await b.aclose()

        proxy.refuse()
        await trio.sleep(0.05)
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", proxy.port)
        proxy.pass_through()  # listening again, same port
        await trio.sleep(0.05)
        c = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        assert await _roundtrip(c, b"back") == b"back"
        await c.aclose()
        assert proxy.stats.accepted == 3 and proxy.stats.cut == 2
