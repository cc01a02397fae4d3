"""The HTTP/1.1 request reading both daemon servers share (dockling.httpwire)."""

from __future__ import annotations

import asyncio

import pytest

from dockling.httpwire import BadRequest, RequestHead, format_head, iter_body, read_head


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def head_of(data: bytes, first: bytes = b"") -> RequestHead | None:
    async def go() -> RequestHead | None:
        return await read_head(reader_of(data), first)

    return asyncio.run(go())


def body_of(data: bytes, piece: int = 4) -> list[bytes]:
    async def go() -> list[bytes]:
        reader = reader_of(data)
        head = await read_head(reader)
        assert head is not None
        return [chunk async for chunk in iter_body(reader, head, piece)]

    return asyncio.run(go())


def test_head_fields() -> None:
    head = head_of(
        b"get /v2/a/b/tags/list?n=2&last=&n=3 HTTP/1.1\r\nHost: x\r\n"
        b"Accept: a/b\r\naccept: c/d\r\nContent-Length: 0\r\n\r\n"
    )
    assert head is not None
    assert head.method == "GET" and head.path == "/v2/a/b/tags/list"
    assert head.query == {"n": ["2", "3"], "last": [""]}
    assert head.headers["accept"] == "a/b, c/d"
    assert (head.body_length, head.chunked) == (0, False)
    # A byte the caller peeked at is part of the head.
    peeked = head_of(b"ET / HTTP/1.1\r\n\r\n", first=b"G")
    assert peeked is not None and peeked.method == "GET"


def test_closed_between_requests_is_not_an_error() -> None:
    assert head_of(b"") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n", "truncated"),
        (b"NONSENSE\r\n\r\n", "malformed request line"),
        (b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", "bad Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "too large"),
    ],
)
def test_bad_heads(data: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        head_of(data)


def test_bodies() -> None:
    plain = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"
    assert body_of(plain) == [b"0123", b"4567", b"89"]
    chunked = (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n5\r\ndefgh\r\n0\r\nTrailer: yes\r\n\r\n"
    )
    assert b"".join(body_of(chunked)) == b"abcdefgh"
    with pytest.raises(BadRequest, match="bad chunk size"):
        body_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    with pytest.raises(ConnectionResetError):
        body_of(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort")


def test_format_head() -> None:
    assert format_head(404, {"Content-Length": "0"}) == (
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    )
    assert format_head(299, {}).startswith(b"HTTP/1.1 299 Status\r\n")
