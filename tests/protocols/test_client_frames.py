"""Server text frames built once per broadcast (``ws_text_frame``) decode in a real WebSocket client."""

from __future__ import annotations

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.frame_protocol import FrameDecoder

from protocols.client import ws_text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
def test_every_length_encoding_decodes_as_one_text_frame(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)          # multi-byte UTF-8 too
    decoder = FrameDecoder(client=True)
    decoder.receive_bytes(ws_text_frame(text))
    frame = decoder.process_buffer()
    assert frame is not None and frame.message_finished and frame.frame_finished
    assert frame.opcode.name == "TEXT" and frame.payload == text.encode()
    assert decoder.process_buffer() is None, "nothing left over"


def test_a_client_connection_reads_consecutive_frames() -> None:
    server, client = WSConnection(ConnectionType.SERVER), WSConnection(ConnectionType.CLIENT)
    server.receive_data(client.send(Request(host="localhost", target="/")))
    next(server.events())
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    client.receive_data(ws_text_frame('{"a":1}') + ws_text_frame("b" * 300) + ws_text_frame(b'{"c":3}'))
    got = [e.data for e in client.events() if isinstance(e, TextMessage)]
    assert got == ['{"a":1}', "b" * 300, '{"c":3}']
