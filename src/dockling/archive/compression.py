"""Detect a layer stream's compression and read it decompressed, hashing as it goes."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
from typing import Any, BinaryIO

from dockling import errors

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class DigestingReader(io.RawIOBase):
    """A read-only stream that hashes (sha256) and counts every byte it hands out."""

    def __init__(self, inner: BinaryIO | Any) -> None:
        super().__init__()
        self._inner = inner
        self._hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._inner.read(size)
        self._hash.update(data)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read to the end so the digest covers the whole stream."""
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def detect(head: bytes) -> str:
    """Name the compression of a stream starting with `head`: "gzip", "zstd" or "none"."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


def decompressed(stream: BinaryIO) -> tuple[BinaryIO, str]:
    """Return a reader of `stream`'s uncompressed bytes and the compression found.

    zstd is read only when the optional `zstandard` module is installed.
    """
    buffered = (
        stream
        if isinstance(stream, io.BufferedReader)
        else io.BufferedReader(_RawAdapter(stream), buffer_size=1 << 16)
    )
    kind = detect(buffered.peek(4)[:4])
    if kind == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb"), kind  # type: ignore[return-value]
    if kind == "zstd":
        try:
            zstandard = importlib.import_module("zstandard")
        except ImportError:
            raise errors.NotImplementedFeature(
                "zstd-compressed layers need the 'zstandard' Python module"
            ) from None
        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(buffered)
        return reader, kind
    return buffered, kind


class _RawAdapter(io.RawIOBase):
    """Lets io.BufferedReader wrap any object with a `read` method."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
