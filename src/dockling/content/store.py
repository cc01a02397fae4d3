"""A content-addressable blob store: DATA_ROOT/content/blobs/sha256/<hex>.

Blobs are written to content/ingest/<ref>/data first, verified against their expected
digest and size, fsynced and renamed into place, so a blob visible under blobs/ is
always complete.  An ingest left behind by a crash is garbage; `clean_ingest` removes it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockling import errors
from dockling.ids import Digest, generate_id, hex_of, is_digest

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IngestWriter:
    """One blob being written.  Resumable: reopening the same ref continues at `offset`.

    Use `write` then `commit`; `abort` (or a failed `commit`) removes the partial data.
    """

    def __init__(self, store: ContentStore, ref: str) -> None:
        self._store = store
        self._dir = store.ingest_root / ref
        self._dir.mkdir(parents=True, exist_ok=True)
        self._path = self._dir / "data"
        self._hash = hashlib.sha256()
        # Unbuffered: what `offset` reports is in the file, so a later writer can resume.
        self._file = open(self._path, "ab+", buffering=0)  # noqa: SIM115 - owned until commit/abort
        # Resume: re-hash what an earlier attempt already wrote.
        self._file.seek(0)
        while chunk := self._file.read(_CHUNK):
            self._hash.update(chunk)
        self._offset = self._file.tell()
        self._closed = False

    @property
    def offset(self) -> int:
        """Bytes written so far (where a resumed download continues)."""
        return self._offset

    def digest(self) -> Digest:
        """The digest of the bytes written so far."""
        return Digest("sha256:" + self._hash.hexdigest())

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) or 0 :]
        self._hash.update(data)
        self._offset += len(data)

    def copy_from(self, stream: BinaryIO) -> None:
        """Append everything `stream` yields."""
        while chunk := stream.read(_CHUNK):
            self.write(chunk)

    def commit(
        self, *, expected_digest: str | None = None, expected_size: int | None = None
    ) -> BlobInfo:
        """Verify, fsync and move the blob into place; raise DataCorrupted on a mismatch."""
        digest = self.digest()
        size = self._offset
        try:
            if expected_size is not None and size != expected_size:
                raise errors.DataCorrupted(
                    f"blob size mismatch: expected {expected_size} bytes, got {size}"
                )
            if expected_digest is not None and digest != expected_digest:
                raise errors.DataCorrupted(
                    f"blob digest mismatch: expected {expected_digest}, got {digest}"
                )
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._closed = True
            target = self._store.path(digest)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(self._path, 0o444)
                os.replace(self._path, target)
                _fsync_dir(target.parent)
        finally:
            self.abort()
        return BlobInfo(digest, size)

    def abort(self) -> None:
        """Drop the partial data (idempotent)."""
        if not self._closed:
            self._file.close()
            self._closed = True
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> IngestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class ContentStore:
    """Blobs addressed by sha256 digest under `root` (DATA_ROOT/content). Thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_root = root / "blobs" / "sha256"
        self.ingest_root = root / "ingest"
        self.blob_root.mkdir(parents=True, exist_ok=True)
        self.ingest_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def path(self, digest: str) -> Path:
        """Where the blob `digest` lives (whether or not it exists)."""
        if not is_digest(digest):
            raise errors.InvalidParameter(f"invalid digest {digest!r}")
        return self.blob_root / hex_of(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def info(self, digest: str) -> BlobInfo:
        """Size of a stored blob; NotFound when absent."""
        try:
            return BlobInfo(Digest(digest), self.path(digest).stat().st_size)
        except FileNotFoundError:
            raise errors.NotFound(f"content {digest}: not found") from None

    def open(self, digest: str) -> BinaryIO:
        """Open a stored blob for reading; NotFound when absent."""
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise errors.NotFound(f"content {digest}: not found") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(self, ref: str | None = None) -> IngestWriter:
        """Start (or resume, for a known `ref`) writing a blob."""
        name = ref if ref is not None else generate_id()
        if not name or "/" in name or name in {".", ".."}:
            raise errors.InvalidParameter(f"invalid ingest ref {name!r}")
        return IngestWriter(self, name)

    def ingest(
        self,
        stream: BinaryIO,
        *,
        expected_digest: str | None = None,
        expected_size: int | None = None,
    ) -> BlobInfo:
        """Store everything `stream` yields as one blob."""
        with self.writer() as w:
            w.copy_from(stream)
            return w.commit(expected_digest=expected_digest, expected_size=expected_size)

    def write_blob(self, data: bytes, *, expected_digest: str | None = None) -> BlobInfo:
        """Store `data` as one blob."""
        with self.writer() as w:
            w.write(data)
            return w.commit(expected_digest=expected_digest, expected_size=len(data))

    def delete(self, digest: str) -> None:
        """Remove a blob; removing an absent blob is harmless."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            pass

    def list(self) -> Iterator[Digest]:
        """Every stored blob digest."""
        for entry in os.scandir(self.blob_root):
            if entry.is_file():
                yield Digest("sha256:" + entry.name)

    def clean_ingest(self, *, keep_prefixes: tuple[str, ...] = ()) -> None:
        """Remove unfinished ingests (call at start, when none can be in flight).

        Ingests whose ref starts with one of `keep_prefixes` stay: downloads keep their
        bytes across a daemon restart so that the next pull resumes with a Range request.
        """
        for entry in os.scandir(self.ingest_root):
            if keep_prefixes and entry.name.startswith(keep_prefixes):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
