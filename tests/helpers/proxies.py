"""Small HTTP proxies on 127.0.0.1 for tests, each logging what it saw.

ThrottleProxy: a reverse proxy in front of a registry that sends blob bodies at a set
rate (so a test can kill a pull half way, deterministically) and logs Range headers.
ForwardProxy: what HTTP_PROXY points at: absolute-URI requests are forwarded, CONNECT
opens a tunnel; only 127.0.0.1 targets are ever contacted, anything else gets a 502.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import select
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit


class _Server:
    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class ThrottleProxy(_Server):
    """Forwards to `upstream` (host:port); blob GET bodies go at `rate` bytes/s (0: full).

    `requests` logs (method, path, Range); `sent[digest]` counts blob bytes sent so far.
    """

    def __init__(self, upstream: str, *, rate: int = 0) -> None:
        self.upstream = upstream
        self.rate = rate
        self.requests: list[tuple[str, str, str]] = []
        self.sent: dict[str, int] = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                with contextlib.suppress(OSError):
                    proxy._handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        super().__init__(Handler)

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        self.requests.append((h.command, h.path, h.headers.get("Range", "")))
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        host, port = self.upstream.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            conn.request(h.command, h.path, body=body, headers=dict(h.headers.items()))
            resp = conn.getresponse()
            h.send_response(resp.status)
            for name, value in resp.getheaders():
                if name.lower() not in ("transfer-encoding", "connection"):
                    h.send_header(name, value)
            h.end_headers()
            if h.command == "HEAD":
                return
            digest = h.path.rsplit("/", 1)[-1] if "/blobs/sha256:" in h.path else ""
            chunk_size = 65536 if not self.rate else max(self.rate // 20, 1024)
            while chunk := resp.read(chunk_size):
                h.wfile.write(chunk)
                h.wfile.flush()
                if digest:
                    self.sent[digest] = self.sent.get(digest, 0) + len(chunk)
                    if self.rate:
                        time.sleep(len(chunk) / self.rate)
        finally:
            conn.close()


class ForwardProxy(_Server):
    """An HTTP forward proxy; `seen` logs ("GET", absolute URL) and ("CONNECT", host:port)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                with contextlib.suppress(OSError):
                    proxy._forward(self)

            def do_CONNECT(self) -> None:
                with contextlib.suppress(OSError):
                    proxy._connect(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        super().__init__(Handler)

    @staticmethod
    def _refuse(h: http.server.BaseHTTPRequestHandler, target: str) -> None:
        body = f"test proxy: {target} is not 127.0.0.1\n".encode()
        h.send_response(502)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _forward(self, h: http.server.BaseHTTPRequestHandler) -> None:
        self.seen.append((h.command, h.path))
        url = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        if url.hostname != "127.0.0.1":
            self._refuse(h, h.path)
            return
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
        try:
            path = url.path + (f"?{url.query}" if url.query else "")
            headers = {k: v for k, v in h.headers.items() if k.lower() != "proxy-connection"}
            conn.request(h.command, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            h.send_response(resp.status)
            for name, value in resp.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    h.send_header(name, value)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
        finally:
            conn.close()

    def _connect(self, h: http.server.BaseHTTPRequestHandler) -> None:
        self.seen.append(("CONNECT", h.path))
        host, _, port = h.path.rpartition(":")
        if host != "127.0.0.1":
            self._refuse(h, h.path)
            return
        upstream = socket.create_connection((host, int(port)), timeout=60)
        h.send_response(200, "Connection established")
        h.end_headers()
        h.wfile.flush()
        client = h.connection
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 30)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        finally:
            upstream.close()
            h.close_connection = True
