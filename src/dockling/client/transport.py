"""HTTP/1.1 to the daemon over a unix socket or TCP, on bare sockets.

http.client would cost about 25 ms of imports (email parsing, ssl) on every
`dockling ps`; the daemon speaks plain HTTP/1.1, so requests are written by hand
and responses parsed here: status line, headers, then a body framed by
Content-Length, chunked encoding, or the end of the connection.

`Transport` opens one connection per request (a CLI makes a handful of calls) and
offers three shapes of answer: decoded JSON (`call`), a streaming `Response`
(`request`, `json_stream`), and a hijacked raw socket (`hijack`) for attach and
exec start.
"""

from __future__ import annotations

import os
import socket

from dockling import API_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any, BinaryIO

    QueryValue = str | int | bool | list[str] | None
    Query = Mapping[str, QueryValue]

DEFAULT_HOST = "unix:///run/dockling/dockling.sock"
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


class APIError(Exception):
    """The daemon answered with an error status; `message` is its `{"message": ...}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DaemonUnreachable(Exception):
    """Nothing listens at the daemon address."""

    def __init__(self, host: str) -> None:
        super().__init__(f"Cannot connect to the dockling daemon at {host}. Is docklingd running?")
        self.host = host


class ProtocolError(Exception):
    """The daemon's answer is not well-formed HTTP/1.1."""


def resolve_host(explicit: str | None = None) -> str:
    """The daemon address: -H, else $DOCKLING_HOST, else the default socket."""
    return explicit or os.environ.get("DOCKLING_HOST") or DEFAULT_HOST


def percent_encode(text: str) -> str:
    """RFC 3986 percent-encoding of everything but unreserved characters."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode())


def encode_query(query: Query | None) -> str:
    """Docker-style query string: booleans as 1/0, lists repeated, None values dropped."""
    if not query:
        return ""
    pairs: list[str] = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, list):
            pairs.extend(f"{key}={percent_encode(item)}" for item in value)
        elif isinstance(value, bool):
            pairs.append(f"{key}={'1' if value else '0'}")
        else:
            pairs.append(f"{key}={percent_encode(str(value))}")
    return "?" + "&".join(pairs) if pairs else ""


def quote_ref(ref: str) -> str:
    """Quote an id, name or image reference for use as one path segment."""
    return percent_encode(ref)


def error_message(status: int, body: bytes) -> str:
    """The daemon's error text from an error body (JSON `message`, else the raw text)."""
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        import json

        try:
            doc = json.loads(text)
        except ValueError:
            return text
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            return str(doc["message"])
    return text or f"HTTP {status}"


class Response:
    """An HTTP response whose body is read incrementally from its socket."""

    def __init__(self, sock: socket.socket, status: int, headers: dict[str, str], rest: bytes):
        self.sock = sock
        self.status = status
        self.headers = headers
        self._buf = bytearray(rest)
        self._eof = False
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self._remaining: int | None = (
            int(length) if length is not None and not self.chunked else None
        )
        self._chunk_left = 0  # bytes left in the current chunk
        if status in (204, 304):
            self._remaining = 0

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def _fill(self) -> bool:
        """Receive more bytes into the buffer; False at end of connection."""
        if self._eof:
            return False
        data = self.sock.recv(65536)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            if not self._fill():
                raise ProtocolError("connection closed inside chunked framing")
        index = self._buf.index(b"\r\n")
        line = bytes(self._buf[:index])
        del self._buf[: index + 2]
        return line

    def read1(self, size: int = 65536) -> bytes:
        """Up to `size` body bytes, waiting only if none are available; b"" at the end."""
        if self.chunked:
            if self._chunk_left == 0:
                size_line = self._line().split(b";", 1)[0].strip()
                try:
                    self._chunk_left = int(size_line, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_line!r}") from None
                if self._chunk_left == 0:
                    while self._line():  # trailers end with an empty line
                        pass
                    self.chunked = False
                    self._remaining = 0
                    return b""
            if not self._buf and not self._fill():
                raise ProtocolError("connection closed inside a chunk")
            take = min(size, self._chunk_left, len(self._buf))
            data = bytes(self._buf[:take])
            del self._buf[:take]
            self._chunk_left -= take
            if self._chunk_left == 0:
                while len(self._buf) < 2:
                    if not self._fill():
                        break
                del self._buf[:2]  # CRLF after the chunk data
            return data
        if self._remaining == 0:
            return b""
        if not self._buf and not self._fill():
            return b""
        take = len(self._buf) if self._remaining is None else min(len(self._buf), self._remaining)
        take = min(take, size)
        data = bytes(self._buf[:take])
        del self._buf[:take]
        if self._remaining is not None:
            self._remaining -= take
        return data

    def read(self) -> bytes:
        """The rest of the body."""
        parts: list[bytes] = []
        while True:
            data = self.read1(1 << 20)
            if not data:
                return b"".join(parts)
            parts.append(data)

    def close(self) -> None:
        self.sock.close()


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status code, lower-cased headers and any body bytes received with them."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ProtocolError("the daemon closed the connection without answering")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers, rest


class Transport:
    """Requests to one daemon address; every path is sent under /v<API_VERSION>."""

    def __init__(self, host: str | None = None, timeout: float | None = None) -> None:
        self.host = resolve_host(host)
        self.timeout = timeout
        self.prefix = f"/v{API_VERSION}"

    def connect(self) -> socket.socket:
        """A connected socket to the daemon, or DaemonUnreachable."""
        try:
            if self.host.startswith("unix://"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(self.host[len("unix://") :])
                except OSError:
                    sock.close()
                    raise
            elif self.host.startswith(("tcp://", "http://")):
                hostport = self.host.split("://", 1)[1].rstrip("/")
                host, _, port = hostport.rpartition(":")
                sock = socket.create_connection((host.strip("[]"), int(port)))
            else:
                raise DaemonUnreachable(self.host)
        except OSError as exc:
            raise DaemonUnreachable(self.host) from exc
        sock.settimeout(self.timeout)
        return sock

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        data: bytes | BinaryIO | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> socket.socket:
        """Connect and write one request; the caller reads the answer from the socket."""
        sock = self.connect()
        headers = [
            f"{method} {self.prefix}{path}{encode_query(query)} HTTP/1.1",
            "Host: docker",
            "User-Agent: dockling-cli",
        ]
        payload = b""
        stream: BinaryIO | None = None
        if body is not None:
            import json

            payload = json.dumps(body).encode()
            headers.append("Content-Type: application/json")
        elif isinstance(data, bytes | bytearray):
            payload = bytes(data)
            headers.append("Content-Type: application/x-tar")
        elif data is not None:
            stream = data
            headers.append("Content-Type: application/x-tar")
            headers.append("Transfer-Encoding: chunked")
        if stream is None and (payload or method in ("POST", "PUT")):
            headers.append(f"Content-Length: {len(payload)}")
        headers.extend(f"{k}: {v}" for k, v in (extra_headers or {}).items())
        try:
            sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode() + payload)
            if stream is not None:
                while True:
                    block = stream.read(1 << 16)
                    if not block:
                        break
                    sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            # The daemon may answer (an error) before reading the whole body.
            pass
        return sock

    def receive(self, sock: socket.socket) -> Response:
        """Read the answer head; error statuses raise APIError with the daemon's message."""
        try:
            status, headers, rest = _read_head(sock)
        except (OSError, ProtocolError):
            sock.close()
            raise
        resp = Response(sock, status, headers, rest)
        if status >= 400:
            raw = resp.read()
            resp.close()
            raise APIError(status, error_message(status, raw))
        return resp

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        data: bytes | BinaryIO | None = None,
    ) -> Response:
        """Send a request and return the open response; error statuses raise APIError."""
        return self.receive(self.send(method, path, query=query, body=body, data=data))

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        data: bytes | BinaryIO | None = None,
    ) -> Any:
        """Send a request and decode its JSON answer (None for an empty body)."""
        resp = self.request(method, path, query=query, body=body, data=data)
        raw = resp.read()
        resp.close()
        if not raw.strip():
            return None
        import json

        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def json_stream(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        data: bytes | BinaryIO | None = None,
    ) -> Iterator[Any]:
        """Decode a stream of concatenated JSON documents (events, stats, pull progress)."""
        resp = self.request(method, path, query=query, data=data)
        return iter_json(resp)

    def hijack(self, path: str, *, query: Query | None = None, body: Any = None) -> Hijacked:
        """POST with `Upgrade: tcp`, expect 101 (or 200), and return the raw stream."""
        sock = self.send(
            "POST",
            path,
            query=query,
            body=body,
            extra_headers={"Connection": "Upgrade", "Upgrade": "tcp"},
        )
        resp = self.receive(sock)
        sock.settimeout(None)
        return Hijacked(sock, bytes(resp._buf))


def iter_json(resp: Response) -> Iterator[Any]:
    """Yield each JSON document of a streamed body, however it is split into chunks."""
    import json

    decoder = json.JSONDecoder()
    buf = ""
    try:
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            buf += chunk.decode("utf-8", "replace")
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    doc, end = decoder.raw_decode(buf)
                except ValueError:
                    break  # incomplete document; wait for more bytes
                buf = buf[end:]
                yield doc
    finally:
        resp.close()


class Hijacked:
    """The raw two-way byte stream left after a `101 UPGRADED` answer."""

    def __init__(self, sock: socket.socket, initial: bytes) -> None:
        self.sock = sock
        self._pending = initial

    def recv(self, size: int = 65536) -> bytes:
        """Up to `size` bytes; b"" at end of stream."""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        try:
            return self.sock.recv(size)
        except (ConnectionResetError, OSError):
            return b""

    def recv_exact(self, size: int) -> bytes:
        """Exactly `size` bytes, or fewer only at end of stream."""
        parts: list[bytes] = []
        missing = size
        while missing:
            chunk = self.recv(missing)
            if not chunk:
                break
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Tell the daemon that stdin ended, keeping the output direction open."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
