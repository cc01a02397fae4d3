"""Docker's multiplexed stdio framing for non-TTY attach, exec and logs streams.

Each frame is an 8-byte header `[stream, 0, 0, 0, size (big-endian uint32)]`
followed by `size` bytes of payload; stream 0 is stdin, 1 stdout, 2 stderr.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

STDIN, STDOUT, STDERR = 0, 1, 2
HEADER = struct.Struct(">BxxxL")
MULTIPLEXED_CONTENT_TYPE = "application/vnd.docker.multiplexed-stream"
RAW_CONTENT_TYPE = "application/vnd.docker.raw-stream"


def encode_frame(stream: int, payload: bytes) -> bytes:
    """One frame carrying `payload` on `stream`."""
    return HEADER.pack(stream, len(payload)) + payload


class FrameSplitter:
    """Incremental decoder: feed arbitrary byte chunks, get whole (stream, payload) frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Yield every frame completed by `data`; keeps a partial frame for later."""
        self._buf += data
        while len(self._buf) >= HEADER.size:
            stream, size = HEADER.unpack_from(self._buf)
            end = HEADER.size + size
            if len(self._buf) < end:
                break
            payload = bytes(self._buf[HEADER.size : end])
            del self._buf[:end]
            yield stream, payload

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a whole frame."""
        return len(self._buf)
