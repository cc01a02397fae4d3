"""Multiplexed stdio frames: encoding and incremental decoding across odd splits."""

from __future__ import annotations

from dockling.client.multiplex import STDERR, STDOUT, FrameSplitter, encode_frame


def test_header_layout() -> None:
    assert encode_frame(STDERR, b"hi") == b"\x02\x00\x00\x00\x00\x00\x00\x02hi"


def test_splitter_reassembles_frames_split_anywhere() -> None:
    stream = (
        encode_frame(STDOUT, b"hello ")
        + encode_frame(STDERR, b"oops")
        + encode_frame(STDOUT, b"x" * 70000)
    )
    for step in (1, 3, 7, 8, 9, 4096):
        splitter = FrameSplitter()
        frames = []
        for i in range(0, len(stream), step):
            frames.extend(splitter.feed(stream[i : i + step]))
        assert frames == [(STDOUT, b"hello "), (STDERR, b"oops"), (STDOUT, b"x" * 70000)]
        assert splitter.pending == 0


def test_empty_payload_frame() -> None:
    assert list(FrameSplitter().feed(encode_frame(STDOUT, b""))) == [(STDOUT, b"")]
