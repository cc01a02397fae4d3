"""Blob upload sessions: streamed to disk, verified, committed atomically, resumable.

A session is a `ContentStore` ingest (content/ingest/<uuid>/data) plus a small record naming
its repository (uploads/<uuid>.json).  Bytes are appended as they arrive, so a client that
disconnects mid-PATCH finds the session where its last byte landed (GET shows the Range) and
can continue; the blob becomes visible only when PUT's digest matches, after fsync and an
atomic rename (done by the content store).  Writers stay open between requests; after a
restart a session is reopened and its bytes re-hashed.  Sessions nobody has written to for
`max_age` seconds are purged (at start and periodically), as Distribution does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from dockling import errors
from dockling.content.store import IngestWriter
from dockling.ids import generate_id
from dockling.registry.errors import RegistryError
from dockling.registry.storage import RegistryStorage, write_atomic

_BATCH = 1 << 20


@dataclass
class Session:
    uuid: str
    name: str
    writer: IngestWriter
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def offset(self) -> int:
        return self.writer.offset


class Uploads:
    """The upload sessions of one registry."""

    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage
        self._open: dict[str, Session] = {}

    def start(self, name: str) -> Session:
        """A new, empty session for repository `name`."""
        uuid = generate_id()
        write_atomic(self.storage.upload_meta_path(uuid), json.dumps({"name": name}).encode())
        session = Session(uuid, name, self.storage.content.writer(uuid))
        self._open[uuid] = session
        return session

    def get(self, name: str, uuid: str) -> Session:
        """The session `uuid` of repository `name`; BLOB_UPLOAD_UNKNOWN otherwise."""
        session = self._open.get(uuid)
        if session is None:
            session = self._reopen(uuid)
        if session.name != name:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {uuid} does not belong to {name}")
        return session

    def _reopen(self, uuid: str) -> Session:
        if not uuid.isalnum() or len(uuid) > 128:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"no upload {uuid!r}")
        try:
            meta = json.loads(self.storage.upload_meta_path(uuid).read_text())
        except (FileNotFoundError, ValueError):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"no upload {uuid!r}") from None
        session = Session(uuid, str(meta["name"]), self.storage.content.writer(uuid))
        self._open[uuid] = session
        return session

    async def append(self, session: Session, chunks: AsyncIterator[bytes]) -> None:
        """Append a request body to the session, writing in a thread while reading the next part.

        Whatever arrived before a disconnect is kept, so the client can resume from `offset`.
        """
        pending: asyncio.Future[None] | None = None
        buf: list[bytes] = []
        size = 0
        try:
            async for chunk in chunks:
                buf.append(chunk)
                size += len(chunk)
                if size >= _BATCH:
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(
                        asyncio.to_thread(session.writer.write, b"".join(buf))
                    )
                    buf, size = [], 0
        finally:
            if pending is not None:
                await asyncio.shield(pending)
            if buf:
                await asyncio.to_thread(session.writer.write, b"".join(buf))

    async def commit(self, session: Session, digest: str) -> int:
        """Verify and publish the blob, link it into the repository; DIGEST_INVALID on mismatch.

        The session ends either way (a mismatched upload cannot become right by appending).
        """
        self._open.pop(session.uuid, None)
        try:
            info = await asyncio.to_thread(session.writer.commit, expected_digest=digest)
        except errors.DataCorrupted as exc:
            raise RegistryError("DIGEST_INVALID", str(exc)) from None
        finally:
            self.storage.upload_meta_path(session.uuid).unlink(missing_ok=True)
        self.storage.link_blob(session.name, digest)
        return info.size

    def cancel(self, session: Session) -> None:
        """Drop the session and its bytes."""
        self._open.pop(session.uuid, None)
        session.writer.abort()
        self.storage.upload_meta_path(session.uuid).unlink(missing_ok=True)

    def purge_stale(self, max_age: float, *, now: float | None = None) -> list[str]:
        """Remove sessions (and stray ingests) untouched for `max_age` seconds; their ids.

        A session's age is that of its last write, so a slow upload that keeps sending is
        never purged; a session whose lock is held (a request in flight) is skipped.
        """
        now = time.time() if now is None else now
        purged: list[str] = []
        ingest_root = self.storage.content.ingest_root
        ids = set(self.storage.iter_upload_ids())
        try:
            ids.update(e.name for e in os.scandir(ingest_root) if e.is_dir())
        except FileNotFoundError:
            pass
        for uuid in sorted(ids):
            touched = 0.0
            paths = (
                ingest_root / uuid,
                ingest_root / uuid / "data",
                self.storage.upload_meta_path(uuid),
            )
            for path in paths:
                try:
                    touched = max(touched, path.stat().st_mtime)
                except FileNotFoundError:
                    continue
            if now - touched < max_age:
                continue
            session = self._open.get(uuid)
            if session is not None:
                if session.lock.locked():
                    continue
                self.cancel(session)
            else:
                shutil.rmtree(ingest_root / uuid, ignore_errors=True)
                self.storage.upload_meta_path(uuid).unlink(missing_ok=True)
            purged.append(uuid)
        return purged
