"""The content store: verified, atomic, resumable blob ingest."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from dockling import errors
from dockling.content.store import ContentStore


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_ingest_and_read(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "content")
    info = store.ingest(io.BytesIO(b"hello"), expected_digest=digest(b"hello"), expected_size=5)
    assert info.digest == digest(b"hello") and info.size == 5
    assert store.read(info.digest) == b"hello"
    assert store.path(info.digest) == tmp_path / "content/blobs/sha256" / info.digest[7:]
    assert list(store.list()) == [info.digest]
    assert list((tmp_path / "content/ingest").iterdir()) == []
    # Storing the same content again is harmless.
    assert store.write_blob(b"hello") == info
    store.delete(info.digest)
    assert not store.exists(info.digest)
    with pytest.raises(errors.NotFound):
        store.open(info.digest)


@pytest.mark.parametrize(
    ("expected_digest", "expected_size"), [(digest(b"other"), None), (None, 99)]
)
def test_mismatch_leaves_nothing(
    tmp_path: Path, expected_digest: str | None, expected_size: int | None
) -> None:
    store = ContentStore(tmp_path / "content")
    with pytest.raises(errors.DataCorrupted):
        store.ingest(
            io.BytesIO(b"hello"), expected_digest=expected_digest, expected_size=expected_size
        )
    assert list(store.list()) == []
    assert list((tmp_path / "content/ingest").iterdir()) == []


def test_resume_an_interrupted_ingest(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "content")
    first = store.writer("download-1")
    first.write(b"hello ")
    # The process "dies" here: the partial data stays under ingest/download-1.
    second = store.writer("download-1")
    assert second.offset == 6
    second.write(b"world")
    info = second.commit(expected_digest=digest(b"hello world"))
    assert store.read(info.digest) == b"hello world"
    first.abort()
    store.clean_ingest()
    assert list((tmp_path / "content/ingest").iterdir()) == []


def test_invalid_digest_is_refused(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "content")
    with pytest.raises(errors.InvalidParameter):
        store.path("sha256:../../etc/passwd")
