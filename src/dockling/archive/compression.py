"""Detect a layer stream's compression and read it decompressed, hashing as it goes
(`InflatedStream` does both in a worker thread)."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import os
import queue
import threading
import zlib
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

    zstd is read with the `zstandard` module (a dependency; imported on first use).
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
        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(
            buffered, read_across_frames=True
        )
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


# -- background inflation -------------------------------------------------------------------

_CHUNK = 1 << 20
# Chunks in flight between the inflating thread and the reader: bounds memory at a few
# MiB whatever the stream expands to.
_QUEUE_DEPTH = 8
_END = b""


class _Failed:
    """What the inflating thread hands over instead of data when it fails."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Replay:
    """`head`, then the rest of `stream`: lets the compression be sniffed before reading."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                return head
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._stream.read(size)


class InflatedStream:
    """The uncompressed bytes of `stream` (gzip, zstd or plain), inflated and hashed
    (sha256, the DiffID) by a worker thread while the caller reads them.

    zlib and hashlib release the GIL on large buffers, so on a multi-core host the
    inflation runs beside the caller's own work (tar parsing, file creation).  Reading
    is forward only: `seek` skips ahead and refuses to go back, which is all a tar
    reader needs.  Memory stays bounded (a few MiB in flight).  A corrupt stream
    surfaces as InvalidParameter from `read`; `close` stops the worker.
    """

    def __init__(self, stream: BinaryIO) -> None:
        head = stream.read(_CHUNK)
        self.compression = detect(head[:4])
        self._source = _Replay(head, stream)
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[bytes | _Failed] = queue.Queue(_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._buf = b""
        self._off = 0  # read position inside _buf
        self._pos = 0  # read position in the whole uncompressed stream
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="inflate", daemon=True)
        self._thread.start()

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.compression == "gzip":
                self._inflate_gzip()
            elif self.compression == "zstd":
                self._inflate_zstd()
            else:
                while chunk := self._source.read(_CHUNK):
                    self._emit(chunk)
            self._put(_END)
        except _Stopped:
            return
        except BaseException as e:  # handed to the reader, which raises it
            self._put(_Failed(e))

    def _put(self, item: bytes | _Failed) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _emit(self, data: bytes) -> None:
        if self._stop.is_set():
            raise _Stopped
        self._hash.update(data)
        self._put(data)

    def _inflate_gzip(self) -> None:
        # zlib checks each member's CRC32 and length itself (wbits=31: gzip wrapper).
        # Members follow each other, possibly with zero padding between (as gzip does).
        inflater = zlib.decompressobj(31)
        data = b""
        while True:
            if not data:
                data = self._source.read(_CHUNK)
                if not data:
                    break
            if inflater.eof:
                data = data.lstrip(b"\0")
                if not data:
                    continue
                inflater = zlib.decompressobj(31)
            try:
                # Bounded output: a small stream that expands enormously stays in chunks.
                out = inflater.decompress(data, _CHUNK)
            except zlib.error as e:
                raise errors.InvalidParameter(f"invalid layer tar: gzip: {e}") from None
            if out:
                self._emit(out)
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        while not inflater.eof:
            # Output zlib still holds for input it has already consumed.
            try:
                out = inflater.decompress(b"", _CHUNK)
            except zlib.error as e:
                raise errors.InvalidParameter(f"invalid layer tar: gzip: {e}") from None
            if not out:
                raise errors.InvalidParameter(
                    "invalid layer tar: gzip: compressed stream ended before the end marker"
                )
            self._emit(out)

    def _inflate_zstd(self) -> None:
        try:
            zstandard = importlib.import_module("zstandard")
        except ImportError:
            raise errors.NotImplementedFeature(
                "zstd-compressed layers need the 'zstandard' Python module"
            ) from None
        # A layer may hold several frames (streaming compressors write one per flush).
        reader = zstandard.ZstdDecompressor().stream_reader(self._source, read_across_frames=True)
        try:
            while chunk := reader.read(_CHUNK):
                self._emit(chunk)
        except zstandard.ZstdError as e:
            raise errors.InvalidParameter(f"invalid layer tar: zstd: {e}") from None

    # -- the reader ---------------------------------------------------------------------

    def _next_chunk(self) -> bool:
        """Make the next chunk current; False at the end of the stream."""
        if self._ended:
            return False
        item = self._queue.get()
        if isinstance(item, _Failed):
            self._ended = True
            raise item.error
        if item is _END or not item:
            self._ended = True
            return False
        self._buf, self._off = item, 0
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all the rest when negative); b"" at the end."""
        if size < 0:
            size = 1 << 62
        left = len(self._buf) - self._off
        if left >= size:
            # The common case: served from the current chunk.
            if self._off == 0 and size == len(self._buf):
                data = self._buf
            else:
                data = self._buf[self._off : self._off + size]
            self._off += size
            self._pos += size
            return data
        pieces = [self._buf[self._off :]] if left else []
        got = left
        self._buf, self._off = b"", 0
        while got < size and self._next_chunk():
            take = min(size - got, len(self._buf))
            pieces.append(self._buf if take == len(self._buf) else self._buf[:take])
            self._off = take
            got += take
        self._pos += got
        return b"".join(pieces)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def copy_to(self, fd: int, size: int) -> int:
        """Write the next `size` bytes to the file descriptor `fd` without joining chunks;
        return how many were there (fewer only at the end of the stream)."""
        done = 0
        while done < size:
            if self._off >= len(self._buf) and not self._next_chunk():
                break
            take = min(size - done, len(self._buf) - self._off)
            view = memoryview(self._buf)[self._off : self._off + take]
            while view:
                view = view[os.write(fd, view) :]
            self._off += take
            done += take
        self._pos += done
        return done

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        """Skip forward to `pos`; going back is refused (the bytes are gone)."""
        if whence == io.SEEK_CUR:
            pos += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("inflated streams seek from the start only")
        if pos < self._pos:
            raise io.UnsupportedOperation("inflated streams cannot seek backwards")
        while self._pos < pos:
            left = len(self._buf) - self._off
            if not left:
                if not self._next_chunk():
                    break
                continue
            take = min(pos - self._pos, left)
            self._off += take
            self._pos += take
        return self._pos

    def finish(self) -> str:
        """Read to the end (the digest covers the whole stream); return "sha256:<hex>"."""
        self._buf, self._off = b"", 0
        while self._next_chunk():
            self._pos += len(self._buf)
            self._buf = b""
        self._thread.join()
        return "sha256:" + self._hash.hexdigest()

    def close(self) -> None:
        """Stop the worker (idempotent); unread data is dropped."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def __enter__(self) -> InflatedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Stopped(Exception):
    """The reader closed the stream: the worker ends quietly."""
