"""A small HTTP/1.1 server on asyncio streams, made for the Docker Engine API.

The Engine API needs three kinds of answer that general frameworks make awkward: plain JSON,
long-lived chunked streams (events, stats, logs, wait) and connection hijacking (attach, exec
start), where after the response head the socket carries raw bytes both ways.  This module
gives exactly those three and nothing more; routing lives in `api.app`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
REASONS = {
    101: "UPGRADED",
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class BadRequest(Exception):
    """The bytes on the wire are not HTTP we understand; the connection is closed."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    body_length: int | None = None
    chunked: bool = False
    api_version: str = ""
    params: dict[str, str] = field(default_factory=dict)
    _body: bytes | None = None

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name, "")
        if value == "":
            return default
        return value.lower() not in ("0", "false", "no")

    def int_arg(self, name: str, default: int) -> int:
        value = self.arg(name, "")
        if value == "":
            return default
        try:
            return int(value)
        except ValueError:
            from dockling.errors import InvalidParameter

            raise InvalidParameter(f"invalid value for {name}: {value!r}") from None

    async def body(self) -> bytes:
        if self._body is None:
            if self.chunked:
                self._body = b"".join([c async for c in self.stream_body()])
            elif self.body_length:
                self._body = await self.reader.readexactly(self.body_length)
            else:
                self._body = b""
        return self._body

    async def json(self) -> Any:
        raw = await self.body()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            from dockling.errors import InvalidParameter

            raise InvalidParameter(f"invalid JSON body: {exc}") from None

    async def stream_body(self) -> AsyncIterator[bytes]:
        """Yield the request body as it arrives (used for image import uploads)."""
        if self._body is not None:
            yield self._body
            return
        if self.chunked:
            while True:
                size_line = await self.reader.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await self.reader.readline()
                    break
                yield await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            self._body = b""
            return
        remaining = self.body_length or 0
        while remaining > 0:
            chunk = await self.reader.read(min(remaining, 1 << 20))
            if not chunk:
                raise BadRequest("request body ended early")
            remaining -= len(chunk)
            yield chunk
        self._body = b""


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(data).encode() + b"\n")


@dataclass
class StreamResponse:
    """A chunked response whose body an async iterator yields, flushed per chunk."""

    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hijack:
    """Take over the connection after the response head: `handle(reader, writer)` owns it."""

    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"


Handler = Callable[[Request], Awaitable[Response | StreamResponse | Hijack]]
ErrorMapper = Callable[[BaseException], Response]


class Router:
    """Method + path-pattern routing; `{name}` segments match one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        # Image names contain slashes: `{name:path}` matches across segments.
        regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", pattern)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for route_method, regex, handler in self._routes:
            m = regex.match(path)
            if m is None:
                continue
            if route_method == method or (method == "HEAD" and route_method == "GET"):
                return handler, {k: unquote(v) for k, v in m.groupdict().items()}
        return None


VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _check_api_version(version: str) -> None:
    """Refuse a /vX.Y prefix outside [MIN_API_VERSION, API_VERSION] as dockerd does (400)."""
    if not version:
        return
    from dockling import API_VERSION, MIN_API_VERSION
    from dockling.errors import InvalidParameter

    if _version_key(version) < _version_key(MIN_API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if _version_key(version) > _version_key(API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )


class HttpServer:
    def __init__(self, router: Router, on_error: ErrorMapper, *, server_header: str) -> None:
        self.router = router
        self.on_error = on_error
        self.server_header = server_header
        # Strong references to the connection tasks.  asyncio's stream protocols hold their
        # StreamReader only weakly, so once a client half-closes (the docker CLI does on
        # attach) nothing else keeps a hijacked connection's task alive, and the garbage
        # collector would destroy it mid-stream, dropping the container's output.
        self._connections: set[asyncio.Task[None]] = set()

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while True:
                request = await self._read_request(reader, writer)
                if request is None:
                    break
                keep_alive = await self._dispatch(request)
                if not keep_alive:
                    break
        except (BadRequest, asyncio.IncompleteReadError, ConnectionError) as exc:
            log.debug("connection closed: %s", exc)
        except asyncio.CancelledError:
            raise
        finally:
            if task is not None:
                self._connections.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise BadRequest("truncated request head") from None
            return None
        except asyncio.LimitOverrunError:
            raise BadRequest("request head too large") from None
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            raise BadRequest(f"malformed request line: {lines[0]!r}") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        split = urlsplit(target)
        path = split.path
        api_version = ""
        m = VERSION_PREFIX.match(path)
        if m:
            api_version, path = m.group(1), m.group(2)
        if len(path) > 1:
            path = path.rstrip("/")
        request = Request(
            method=method.upper(),
            path=path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            reader=reader,
            writer=writer,
            api_version=api_version,
        )
        if "chunked" in headers.get("transfer-encoding", "").lower():
            request.chunked = True
        elif "content-length" in headers:
            try:
                request.body_length = int(headers["content-length"])
            except ValueError:
                raise BadRequest("bad Content-Length") from None
        return request

    async def _dispatch(self, request: Request) -> bool:
        matched = self.router.match(request.method, request.path)
        result: Response | StreamResponse | Hijack
        if matched is None:
            result = Response(
                status=404,
                body=json.dumps({"message": "page not found"}).encode() + b"\n",
            )
        else:
            handler, params = matched
            request.params = params
            try:
                _check_api_version(request.api_version)
                result = await handler(request)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                result = self.on_error(exc)
        # Drain an unread body so the next request on this connection parses cleanly.
        if not isinstance(result, Hijack) and request._body is None:
            async for _ in request.stream_body():
                pass
        keep_alive = request.headers.get("connection", "").lower() != "close"
        writer = request.writer
        if isinstance(result, Response):
            self._write_head(
                writer,
                result.status,
                {
                    "Content-Type": result.content_type,
                    "Content-Length": str(len(result.body)),
                    **result.headers,
                },
            )
            if request.method != "HEAD" and result.status not in (204, 304):
                writer.write(result.body)
            await writer.drain()
            return keep_alive
        if isinstance(result, StreamResponse):
            self._write_head(
                writer,
                result.status,
                {
                    "Content-Type": result.content_type,
                    "Transfer-Encoding": "chunked",
                    **result.headers,
                },
            )
            await writer.drain()
            try:
                async for chunk in result.chunks:
                    if chunk:
                        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            finally:
                aclose = getattr(result.chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
            return keep_alive
        # A body sent with the hijack request is not stdin: consume it first.
        if request._body is None and request.body_length:
            await request.body()
        upgrade = request.headers.get("upgrade", "").lower() == "tcp"
        if upgrade:
            self._write_head(
                writer,
                101,
                {
                    "Content-Type": result.content_type,
                    "Connection": "Upgrade",
                    "Upgrade": "tcp",
                },
            )
        else:
            self._write_head(writer, 200, {"Content-Type": result.content_type})
        await writer.drain()
        await result.handle(request.reader, writer)
        return False

    def _write_head(
        self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str]
    ) -> None:
        from dockling import API_VERSION

        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        base = {
            "Api-Version": API_VERSION,
            "Docker-Experimental": "false",
            "Ostype": "linux",
            "Server": self.server_header,
        }
        for name, value in {**base, **headers}.items():
            lines.append(f"{name}: {value}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
