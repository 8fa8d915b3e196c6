"""Frames on the socket between a training process and its delivery process.

A frame is one pickled message (protocol 5). Large buffers (an image's pixels, a histogram's
arrays) travel *out of band*: pickling them does not copy them into the pickle, they are written
to the socket as they are and read straight into the buffers the other side unpickles from, so a
value's bytes cross the process boundary once.

    header: buffer count (4 bytes), pickle length (8 bytes), then 8 bytes per buffer length
    body:   the pickle, then every buffer
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

_HEADER = struct.Struct("!IQ")
_LENGTH = struct.Struct("!Q")
#: Buffers smaller than this are copied into the frame: one system call beats zero copies.
_SMALL = 64 * 1024


class ConnectionLost(EOFError):
    """The other side closed the socket (or died), possibly in the middle of a frame."""


def encode(message: Any) -> list[bytes | memoryview]:
    """The parts of ``message``'s frame, to be written in order."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [buffer.raw() for buffer in buffers]
    lengths = b"".join(_LENGTH.pack(raw.nbytes) for raw in raws)
    head = _HEADER.pack(len(raws), len(data)) + lengths
    small = [bytes(raw) for raw in raws if raw.nbytes < _SMALL]
    if len(small) == len(raws):
        return [head + data + b"".join(small)]
    return [head + data, *raws]


def send(sock: socket.socket, message: Any) -> None:
    """Write ``message`` as one frame (blocks while the socket is full)."""
    for part in encode(message):
        sock.sendall(part)


def receive(sock: socket.socket) -> Any:
    """Read one frame and unpickle it; :class:`ConnectionLost` at the end of the stream."""
    count, length = _HEADER.unpack(_read(sock, _HEADER.size))
    sizes = [_LENGTH.unpack_from(_read(sock, _LENGTH.size))[0] for _ in range(count)]
    data = _read(sock, length)
    buffers = [_read(sock, size) for size in sizes]
    return pickle.loads(data, buffers=buffers)


def _read(sock: socket.socket, size: int) -> bytearray:
    """Exactly ``size`` bytes, read into one buffer."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    while view:
        received = sock.recv_into(view)
        if received == 0:
            raise ConnectionLost("the other process closed the connection")
        view = view[received:]
    return buffer
