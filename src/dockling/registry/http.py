"""The registry's own HTTP/1.1 server on asyncio streams.

Why not `dockling.api.http`: that server is shaped for the Engine API (it adds Docker engine
headers to every answer, strips /vX.Y prefixes, knows only the engine's status codes and has
hijacking).  A registry needs other things: zero-copy blob downloads with sendfile(2)
(the throughput target: see `_send_file`), `Range` answers, `Expect: 100-continue`, large
streamed request bodies that a handler may refuse without reading, and per-request access
logs.  Reading requests and writing response heads is shared with it (`dockling.httpwire`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dockling.httpwire import BadRequest, RequestHead, format_head, iter_body, read_head

log = logging.getLogger(__name__)
access_log = logging.getLogger("dockling.registry.access")

STREAM_LIMIT = 1 << 20  # the reader buffers up to twice this before pausing the socket
DRAIN_LIMIT = 16 << 20  # an unread body larger than this closes the connection instead


SEND_TIMEOUT_SECONDS = 120.0  # a client that reads nothing for this long is dropped
# Blob downloads block in these threads (in sendfile(2) and poll(2), without the GIL); a
# pool of its own keeps many slow downloads from starving the default pool's disk work.
_SEND_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="registry-sendfile")

_TLS_ON_PLAIN_PORT = (
    b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)


class BodyTooLarge(Exception):
    """The request body is longer than the handler's limit."""


@dataclass
class Request:
    """One request; the body is read lazily, by `read_body` or `iter_body`."""

    head: RequestHead
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    user: str = "-"
    _consumed: bool = False
    _continued: bool = False

    @property
    def method(self) -> str:
        return self.head.method

    @property
    def path(self) -> str:
        return self.head.path

    @property
    def query(self) -> dict[str, list[str]]:
        return self.head.query

    @property
    def headers(self) -> dict[str, str]:
        return self.head.headers

    @property
    def body_length(self) -> int | None:
        return self.head.body_length

    @property
    def chunked(self) -> bool:
        return self.head.chunked

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.body_length)

    async def _send_continue(self) -> None:
        if not self._continued and self.headers.get("expect", "").lower() == "100-continue":
            self._continued = True
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await self.writer.drain()

    async def iter_body(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives; raises ConnectionError if the client goes away."""
        if self._consumed:
            return
        self._consumed = True
        await self._send_continue()
        async for chunk in iter_body(self.reader, self.head, STREAM_LIMIT):
            yield chunk

    async def read_body(self, limit: int) -> bytes:
        """The whole body; BodyTooLarge (without reading it) when it exceeds `limit` bytes."""
        if self.body_length is not None and self.body_length > limit:
            raise BodyTooLarge(self.body_length)
        parts: list[bytes] = []
        total = 0
        async for chunk in self.iter_body():
            total += len(chunk)
            if total > limit:
                raise BodyTooLarge(total)
            parts.append(chunk)
        return b"".join(parts)


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class FileResponse:
    """`length` bytes of the file at `path` from `offset`, sent with sendfile(2)."""

    path: Path
    offset: int
    length: int
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response | FileResponse]]
ErrorMapper = Callable[[Request, BaseException], Response]


def _wait_writable(poller: select.poll) -> None:
    if not poller.poll(SEND_TIMEOUT_SECONDS * 1000):
        raise TimeoutError("client stopped reading")


def _send_blocking(sock_fd: int, head: bytes, file_fd: int, result: FileResponse) -> int:
    """Send `head` then the file range on the non-blocking socket `sock_fd`; body bytes sent.

    Runs in a worker thread; both syscalls release the GIL, so the event loop keeps going.
    """
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    view = memoryview(head)
    while view:
        try:
            view = view[os.write(sock_fd, view) :]
        except BlockingIOError:
            _wait_writable(poller)
    sent = 0
    while sent < result.length:
        try:
            n = os.sendfile(sock_fd, file_fd, result.offset + sent, result.length - sent)
        except BlockingIOError:
            _wait_writable(poller)
            continue
        if n == 0:  # end of file before `length`
            break
        sent += n
    return sent


class HttpServer:
    """Serves connections: parse, call `handler`, write the answer, keep the connection alive."""

    def __init__(self, handler: Handler, on_error: ErrorMapper, *, server_header: str) -> None:
        self.handler = handler
        self.on_error = on_error
        self.server_header = server_header
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.closing = False
        self._connections: set[asyncio.Task[None]] = set()

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else "-"
        # asyncio's stream protocols hold their readers weakly: a strong reference to the
        # task keeps a connection whose transport is paused from being garbage-collected.
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while not self.closing:
                request = await self._read_request(reader, writer)
                if request is None:
                    break
                self.in_flight += 1
                self.idle.clear()
                try:
                    keep_alive = await self._dispatch(request, host)
                finally:
                    self.in_flight -= 1
                    if self.in_flight == 0:
                        self.idle.set()
                if not keep_alive:
                    break
        except (BadRequest, asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
            log.debug("connection closed: %s", exc)
        finally:
            if task is not None:
                self._connections.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        try:
            first = await reader.readexactly(1)
        except asyncio.IncompleteReadError:
            return None
        if first == b"\x16":
            # A TLS ClientHello on the plain port: clients such as skopeo probe HTTPS first and
            # fall back to HTTP only on an answer, so answer at once as Go servers do.
            writer.write(_TLS_ON_PLAIN_PORT)
            await writer.drain()
            raise BadRequest("TLS handshake on a plain HTTP port")
        head = await read_head(reader, first)
        return None if head is None else Request(head, reader, writer)

    async def _dispatch(self, request: Request, host: str) -> bool:
        started = time.monotonic()
        result: Response | FileResponse
        try:
            result = await self.handler(request)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, asyncio.IncompleteReadError):
            raise
        except Exception as exc:  # every failure becomes an HTTP answer
            result = self.on_error(request, exc)
        keep_alive = request.headers.get("connection", "").lower() != "close"
        if not request._consumed and request.has_body:
            # A refused body: skip a small one so the connection stays usable; close on a large
            # one (or one the client has not sent, waiting for 100-continue).
            if (
                request.chunked
                or (request.body_length or 0) > DRAIN_LIMIT
                or (request.headers.get("expect", "").lower() == "100-continue")
            ):
                keep_alive = False
                request._consumed = True
            else:
                async for _ in request.iter_body():
                    pass
        headers = {"Server": self.server_header}
        if not keep_alive:
            headers["Connection"] = "close"
        writer = request.writer
        sent = 0
        if isinstance(result, Response):
            headers.setdefault("Content-Type", "application/json")
            headers.update(result.headers)
            headers["Content-Length"] = headers.get("Content-Length", str(len(result.body)))
            writer.write(format_head(result.status, headers))
            if request.method != "HEAD" and result.status not in (204, 304):
                writer.write(result.body)
                sent = len(result.body)
            await writer.drain()
        else:
            headers.update(result.headers)
            headers["Content-Length"] = str(result.length)
            head = format_head(result.status, headers)
            if request.method == "HEAD" or not result.length:
                writer.write(head)
                await writer.drain()
            else:
                sent = await self._send_file(writer, result, head)
        self._log(request, host, result.status, sent, started)
        return keep_alive

    async def _send_file(
        self, writer: asyncio.StreamWriter, result: FileResponse, head: bytes
    ) -> int:
        """Write `head`, then the file range; the number of body bytes sent.

        On plain TCP the whole answer goes out from a worker thread: sendfile(2) on a dup of
        the socket, waiting in poll(2) whenever the socket buffer is full.  asyncio's own
        `loop.sendfile` goes back to the event loop after every partial send, which halves
        the throughput of a large blob.  The transport's reading is paused meanwhile, and
        the dup keeps the socket alive even if the transport closes its descriptor.  TLS
        (and a transport with unsent bytes) takes asyncio's path, which copies.
        """
        loop = asyncio.get_running_loop()
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)  # start_server's are read-write
        sock = transport.get_extra_info("socket")
        fd = os.open(result.path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            plain = sock is not None and transport.get_extra_info("sslcontext") is None
            if not plain or transport.get_write_buffer_size():
                writer.write(head)
                await writer.drain()
                return await loop.sendfile(transport, f, result.offset, result.length)
            transport.pause_reading()
            sock_fd = os.dup(sock.fileno())
            try:
                sent = await loop.run_in_executor(
                    _SEND_POOL, _send_blocking, sock_fd, head, f.fileno(), result
                )
            finally:
                os.close(sock_fd)
                if not transport.is_closing():
                    transport.resume_reading()
        if sent != result.length:
            # The file shrank under us: the Content-Length promise is broken, so hang up.
            raise ConnectionResetError(f"sent {sent} of {result.length} bytes")
        return sent

    def _log(self, request: Request, host: str, status: int, sent: int, started: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        query = "&".join(f"{k}={v}" for k, vs in request.query.items() for v in vs)
        target = request.path + (f"?{query}" if query else "")
        access_log.info(
            '%s - %s [%s] "%s %s HTTP/1.1" %d %d %.1fms',
            host,
            request.user,
            when,
            request.method,
            target,
            status,
            sent,
            (time.monotonic() - started) * 1000,
        )
