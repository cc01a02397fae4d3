"""InflatedStream: gzip/plain inflated and hashed by a worker thread, read forward only."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import threading

import pytest
import zstandard

from dockling import errors
from dockling.archive.compression import InflatedStream

DATA = bytes(range(256)) * 20_000  # 5 MB: several chunks


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_gzip_members_and_zero_padding_read_as_one_stream() -> None:
    half = len(DATA) // 2
    blob = gzip.compress(DATA[:half]) + b"\0" * 700 + gzip.compress(DATA[half:])
    with InflatedStream(io.BytesIO(blob)) as s:
        assert s.compression == "gzip"
        assert s.read(10) == DATA[:10]
        assert s.read(3 << 20) == DATA[10 : 10 + (3 << 20)]
        assert s.finish() == sha(DATA)


def test_seek_skips_forward_and_never_back() -> None:
    with InflatedStream(io.BytesIO(DATA)) as s:
        assert s.compression == "none"
        assert s.seek(2_500_000) == 2_500_000
        assert s.read(5) == DATA[2_500_000:2_500_005]
        with pytest.raises(io.UnsupportedOperation):
            s.seek(10)
        assert s.finish() == sha(DATA)  # the skipped bytes are hashed too


def test_copy_to_writes_across_chunks() -> None:
    read_fd, write_fd = os.pipe()
    got = bytearray()
    reader = threading.Thread(target=lambda: got.extend(read_all(read_fd)))
    reader.start()
    with InflatedStream(io.BytesIO(gzip.compress(DATA))) as s:
        assert s.copy_to(write_fd, len(DATA) - 1) == len(DATA) - 1
        os.close(write_fd)
        assert s.read() == DATA[-1:]
    reader.join()
    os.close(read_fd)
    assert bytes(got) == DATA[:-1]


def read_all(fd: int) -> bytes:
    out = bytearray()
    while chunk := os.read(fd, 1 << 16):
        out += chunk
    return bytes(out)


@pytest.mark.parametrize(
    "blob",
    [
        gzip.compress(DATA)[:-9],  # truncated
        gzip.compress(DATA) + b"garbage!",  # trailing bytes that are not gzip
        gzip.compress(DATA)[:-8] + b"\0\0\0\0" + gzip.compress(DATA)[-4:],  # bad CRC
    ],
    ids=["truncated", "trailing-garbage", "bad-crc"],
)
def test_corrupt_gzip_is_invalid_parameter(blob: bytes) -> None:
    with InflatedStream(io.BytesIO(blob)) as s, pytest.raises(errors.InvalidParameter):
        s.finish()


def test_a_bomb_stays_in_bounded_chunks_and_close_stops_the_worker() -> None:
    blob = gzip.compress(b"\0" * (256 << 20), compresslevel=9)  # 256 MiB from ~250 KB
    s = InflatedStream(io.BytesIO(blob))
    assert s.read(1 << 20) == b"\0" * (1 << 20)
    s.close()  # well before the end: the worker must not run on
    assert not s._thread.is_alive()


def test_zstd_frames_inflate_and_hash_like_the_plain_bytes() -> None:
    plain = os.urandom(1 << 20) + b"tail" * 50_000
    # Two frames back to back, as a streaming compressor may write them.
    half = len(plain) // 2
    blob = zstandard.ZstdCompressor().compress(plain[:half]) + zstandard.ZstdCompressor().compress(
        plain[half:]
    )
    with InflatedStream(io.BytesIO(blob)) as stream:
        assert stream.compression == "zstd"
        assert stream.read() == plain
        assert stream.finish() == sha(plain)


def test_corrupt_zstd_is_invalid_parameter() -> None:
    # With a frame checksum (what registries' zstd layers carry) damage is detected here;
    # without one the blob's own digest, checked on pull, is what catches it.
    blob = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(os.urandom(100_000)))
    blob[-2] ^= 0xFF
    with InflatedStream(io.BytesIO(bytes(blob))) as stream, pytest.raises(errors.InvalidParameter):
        stream.read()
