"""HTTP/1.1 on the wire, as the daemon's two small servers read and write it.

The Engine API server (`api.http`) and the registry server (`registry.http`) answer in very
different ways (hijacked streams there, sendfile and Range here) but read requests and
write response heads the same way; that common part lives here, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

MAX_HEAD_BYTES = 64 * 1024
REASONS = {
    100: "Continue",
    101: "UPGRADED",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    416: "Requested Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class BadRequest(Exception):
    """The bytes on the wire are not HTTP we understand; the connection is closed."""


@dataclass(frozen=True)
class RequestHead:
    """A request line and its headers (names lower-cased; repeated ones joined by ", ")."""

    method: str
    path: str  # the target's path, undecoded
    query: dict[str, list[str]]
    headers: dict[str, str]
    body_length: int | None  # Content-Length, when the body is not chunked
    chunked: bool


async def read_head(reader: asyncio.StreamReader, first: bytes = b"") -> RequestHead | None:
    """The next request's head; None when the client closed the connection between requests.

    `first` is what the caller already read of it (a byte peeked at).  Raises BadRequest for
    a truncated, oversized or malformed head and for an unusable Content-Length.
    """
    try:
        head = first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if (first + exc.partial).strip():
            raise BadRequest("truncated request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    if len(head) > MAX_HEAD_BYTES:
        raise BadRequest("request head too large")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        raise BadRequest(f"malformed request line: {lines[0]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            # Repeated headers (Go clients send one Accept line per type) are one list.
            previous = headers.get(key)
            headers[key] = f"{previous}, {value.strip()}" if previous else value.strip()
    split = urlsplit(target)
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length: int | None = None
    if not chunked and "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length < 0:
            raise BadRequest("bad Content-Length")
    return RequestHead(
        method=method.upper(),
        path=split.path,
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        body_length=length,
        chunked=chunked,
    )


async def iter_body(
    reader: asyncio.StreamReader, head: RequestHead, piece: int
) -> AsyncIterator[bytes]:
    """Yield the request body as it arrives, in pieces of at most `piece` bytes; raises
    ConnectionResetError when the client stops sending early, BadRequest for bad chunking."""
    if head.chunked:
        while True:
            size_line = await reader.readline()
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                # Trailers end with an empty line.
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return
            remaining = size
            while remaining:
                chunk = await reader.read(min(remaining, piece))
                if not chunk:
                    raise ConnectionResetError("request body ended early")
                remaining -= len(chunk)
                yield chunk
            await reader.readexactly(2)
    remaining = head.body_length or 0
    while remaining > 0:
        chunk = await reader.read(min(remaining, piece))
        if not chunk:
            raise ConnectionResetError("request body ended early")
        remaining -= len(chunk)
        yield chunk


def format_head(status: int, headers: dict[str, str]) -> bytes:
    """A response's status line and headers, ending with the blank line."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
