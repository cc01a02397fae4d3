"""A small HTTP/1.1 server on asyncio streams, made for the Docker Engine API.

The Engine API needs three kinds of answer that general frameworks make awkward: plain JSON,
long-lived chunked streams (events, stats, logs, wait) and connection hijacking (attach, exec
start), where after the response head the socket carries raw bytes both ways.  This module
gives exactly those three and nothing more; routing lives in `api.app`.  Request heads are
read, and response heads written, by `dockling.httpwire` (shared with the registry's server).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from dockling.httpwire import BadRequest, RequestHead, format_head, iter_body, read_head

log = logging.getLogger(__name__)


@dataclass
class Request:
    head: RequestHead
    path: str  # without the /vX.Y prefix and a trailing slash
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    api_version: str = ""
    params: dict[str, str] = field(default_factory=dict)
    _body: bytes | None = None

    @property
    def method(self) -> str:
        return self.head.method

    @property
    def query(self) -> dict[str, list[str]]:
        return self.head.query

    @property
    def headers(self) -> dict[str, str]:
        return self.head.headers

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
            self._body = b"".join([c async for c in self.stream_body()])
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
        try:
            async for chunk in iter_body(self.reader, self.head, 1 << 20):
                yield chunk
        except ConnectionResetError as exc:
            raise BadRequest(str(exc)) from None
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
        except Exception:
            # A response that fails half-way (a stream's generator raising) can only end
            # the connection, which the client sees as a cut stream: the cause goes here.
            log.exception("connection failed while answering")
        finally:
            if task is not None:
                self._connections.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        head = await read_head(reader)
        if head is None:
            return None
        path = head.path
        api_version = ""
        m = VERSION_PREFIX.match(path)
        if m:
            api_version, path = m.group(1), m.group(2)
        if len(path) > 1:
            path = path.rstrip("/")
        return Request(head, path, reader, writer, api_version=api_version)

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
        if request._body is None and request.head.body_length:
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

        base = {
            "Api-Version": API_VERSION,
            "Docker-Experimental": "false",
            "Ostype": "linux",
            "Server": self.server_header,
        }
        writer.write(format_head(status, {**base, **headers}))
