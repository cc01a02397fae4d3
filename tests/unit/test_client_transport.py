"""The hand-written HTTP/1.1 client against a real peer on a unix socket.

The peer is a plain socket server in a thread that answers with canned bytes, so
that framing (Content-Length, chunked, close-delimited), error bodies and the
101 hijack are exercised exactly as they arrive on the wire.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockling.client.transport import APIError, DaemonUnreachable, Transport, encode_query


class Peer:
    def __init__(self, path: Path, answer: bytes, echo_after_head: bool = False) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.answer = answer
        self.echo = echo_after_head
        self.request = b""
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(65536)
            head, _, body = self.request.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    need = int(line.split(b":")[1])
                    while len(body) < need:
                        body += conn.recv(65536)
            self.request = head + b"\r\n\r\n" + body
            conn.sendall(self.answer)
            if self.echo:
                while True:
                    data = conn.recv(1024)
                    if not data:
                        break
                    conn.sendall(data.upper())

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.server.close()


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "d.sock"


def test_json_call_with_content_length(sock_path: Path) -> None:
    peer = Peer(sock_path, b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"Id":"x1"}')
    t = Transport(f"unix://{sock_path}")
    assert t.call("POST", "/containers/create", query={"name": "a b"}, body={"Image": "bb"}) == {
        "Id": "x1"
    }
    peer.close()
    head, _, body = peer.request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1.45/containers/create?name=a%20b HTTP/1.1")
    assert body == b'{"Image": "bb"}'


def test_chunked_stream_of_json(sock_path: Path) -> None:
    docs = b'{"a":1}\n{"b":' + b"2}\n"
    chunked = (
        b"3\r\n" + docs[:3] + b"\r\n" + b"%x\r\n" % (len(docs) - 3) + docs[3:] + b"\r\n0\r\n\r\n"
    )
    peer = Peer(sock_path, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    assert list(Transport(f"unix://{sock_path}").json_stream("GET", "/events")) == [
        {"a": 1},
        {"b": 2},
    ]
    peer.close()


def test_error_status_raises_api_error(sock_path: Path) -> None:
    body = b'{"message":"No such container: nope"}'
    peer = Peer(
        sock_path,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    with pytest.raises(APIError) as info:
        Transport(f"unix://{sock_path}").call("GET", "/containers/nope/json")
    assert info.value.status == 404
    assert info.value.message == "No such container: nope"
    peer.close()


def test_hijack_after_101(sock_path: Path) -> None:
    peer = Peer(
        sock_path,
        b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello",
        echo_after_head=True,
    )
    stream = Transport(f"unix://{sock_path}").hijack("/containers/x/attach", query={"stream": True})
    assert stream.recv_exact(5) == b"hello"
    stream.send(b"abc")
    assert stream.recv_exact(3) == b"ABC"
    stream.close_write()
    assert stream.recv() == b""
    stream.close()
    peer.close()
    assert b"Upgrade: tcp" in peer.request and b"stream=1" in peer.request


def test_unreachable(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnreachable, match="Cannot connect to the dockling daemon at unix://"):
        Transport(f"unix://{tmp_path}/none.sock").call("GET", "/_ping")


def test_encode_query() -> None:
    assert encode_query({"a": True, "b": None, "c": ["x", "y z"], "d": 3}) == "?a=1&c=x&c=y%20z&d=3"
